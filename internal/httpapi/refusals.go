package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// refusalLogEvery is the least time between two refusals logged in full.
const refusalLogEvery = time.Second

// maxRefusalAddresses bounds the client addresses a RefusalLog counts
// between two lines; beyond it the count says "100+".
const maxRefusalAddresses = 100

// RefusalLog paces the warnings of requests refused before anyone is
// known (an unknown key, a wrong login token, a foreign Host header), so
// that clients trying keys or tokens in a loop, from one address or many,
// cannot flood the log. A refusal is logged in full when none was in the
// second before; those that follow within the second are counted, and
// the next refusal logged in full comes after a line that says how many
// were left out since, from how many addresses and why. No timer runs:
// nothing is logged after the last refusal, so nothing outlives the
// server. The API and the web UI share one (see the web UI's Wrap), so
// one limit holds for all of them.
type RefusalLog struct {
	log   *slog.Logger
	every time.Duration

	mu sync.Mutex
	// from is when the last refusal logged in full was; until a second
	// later, refusals are only counted.
	from     time.Time
	leftOut  int
	addrs    map[string]struct{}
	tooMany  bool
	messages map[string]struct{}
}

// NewRefusalLog returns a RefusalLog whose summary lines go to log.
func NewRefusalLog(log *slog.Logger) *RefusalLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RefusalLog{log: log, every: refusalLogEvery, addrs: map[string]struct{}{}, messages: map[string]struct{}{}}
}

// Warn logs the refusal of r to log at warn level, with msg (a constant,
// which the summary lines list as a reason), the client's address and
// args, unless a refusal was logged in full less than a second ago: then
// it only counts it for the next summary line.
func (l *RefusalLog) Warn(log *slog.Logger, r *http.Request, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if !l.from.IsZero() && now.Sub(l.from) < l.every {
		l.leftOut++
		l.messages[msg] = struct{}{}
		if host := clientHost(r); !l.tooMany {
			if _, seen := l.addrs[host]; !seen && len(l.addrs) == maxRefusalAddresses {
				l.tooMany = true
			} else {
				l.addrs[host] = struct{}{}
			}
		}
		l.mu.Unlock()
		return
	}
	summary := l.summary()
	l.from = now
	l.mu.Unlock()
	if summary != nil {
		l.log.Warn("refused requests not logged one by one", summary...)
	}
	log.Warn(msg, append([]any{"remote", r.RemoteAddr}, args...)...)
}

// summary returns the attributes of the line that counts the refusals
// left out since the last one logged in full, and starts counting anew;
// nil when none was left out. l.mu must be held.
func (l *RefusalLog) summary() []any {
	if l.leftOut == 0 {
		return nil
	}
	var addresses any = len(l.addrs)
	if l.tooMany {
		addresses = strconv.Itoa(maxRefusalAddresses) + "+"
	}
	messages := make([]string, 0, len(l.messages))
	for m := range l.messages {
		messages = append(messages, m)
	}
	slices.Sort(messages)
	attrs := []any{"left_out", l.leftOut, "since", l.from.UTC().Format(time.RFC3339), "addresses", addresses, "reasons", strings.Join(messages, "; ")}
	l.leftOut, l.tooMany = 0, false
	clear(l.addrs)
	clear(l.messages)
	return attrs
}

// clientHost is the address a request came from, without its port, so
// that one client's connections count as one address.
func clientHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
