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

// refusalLogEvery is how often a RefusalLog writes a line while refusals
// keep coming.
const refusalLogEvery = time.Second

// maxRefusalAddresses bounds the client addresses a RefusalLog counts
// between two lines; beyond it the count says "100+".
const maxRefusalAddresses = 100

// RefusalLog paces the warnings of requests refused before anyone is
// known (an unknown key, a wrong login token, a foreign Host header), so
// that clients trying keys or tokens in a loop, from one address or many,
// cannot flood the log. The first refusal after a quiet second is logged
// in full; those that follow are counted, and once a second, while they
// last, one line says how many were left out, from how many addresses and
// why. The API and the web UI share one (see the web UI's Wrap), so one
// limit holds for all of them.
type RefusalLog struct {
	log   *slog.Logger
	every time.Duration

	mu sync.Mutex
	// pacing is true from a logged refusal until a second passes
	// without one; meanwhile refusals are only counted.
	pacing   bool
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
// args, unless a refusal was logged less than a second ago: then it only
// counts it for the next summary line.
func (l *RefusalLog) Warn(log *slog.Logger, r *http.Request, msg string, args ...any) {
	l.mu.Lock()
	if l.pacing {
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
	l.pacing = true
	time.AfterFunc(l.every, l.summarize)
	l.mu.Unlock()
	log.Warn(msg, append([]any{"remote", r.RemoteAddr}, args...)...)
}

// summarize ends a second of pacing: it logs the refusals left out in
// it, if any, and keeps pacing for another second; without any, the next
// refusal is logged in full.
func (l *RefusalLog) summarize() {
	l.mu.Lock()
	if l.leftOut == 0 {
		l.pacing = false
		l.mu.Unlock()
		return
	}
	leftOut := l.leftOut
	var addresses any = len(l.addrs)
	if l.tooMany {
		addresses = strconv.Itoa(maxRefusalAddresses) + "+"
	}
	messages := make([]string, 0, len(l.messages))
	for m := range l.messages {
		messages = append(messages, m)
	}
	slices.Sort(messages)
	l.leftOut, l.tooMany = 0, false
	clear(l.addrs)
	clear(l.messages)
	time.AfterFunc(l.every, l.summarize)
	l.mu.Unlock()
	l.log.Warn("refused requests not logged one by one", "left_out", leftOut, "addresses", addresses, "reasons", strings.Join(messages, "; "))
}

// clientHost is the address a request came from, without its port, so
// that one client's connections count as one address.
func clientHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
