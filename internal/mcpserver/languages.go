package mcpserver

import (
	"slices"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/cove-sandbox/cove/internal/lang"
)

// languageArgument is the name of every tool argument that names a
// language of lang's registry. Its schema lists the canonical names, and
// the tools take the aliases too, as REST and the CLI do.
const languageArgument = "language"

// languageNames are the languages run_code takes.
func languageNames() []string {
	var names []string
	for _, l := range lang.All() {
		names = append(names, l.Name)
	}
	return names
}

// contextLanguages are the languages run_in_context takes: those with
// stateful contexts.
func contextLanguages() []string {
	var names []string
	for _, l := range lang.All() {
		if _, ok := l.ContextDriver(); ok {
			names = append(names, l.Name)
		}
	}
	return names
}

// languages is the schema adjustment of a language argument: an enum of
// the canonical names, and a description that names their aliases, which
// models would not otherwise know they may send.
func languages(names ...string) func(*jsonschema.Schema) {
	return func(p *jsonschema.Schema) {
		enum(names...)(p)
		var aliases []string
		for _, l := range lang.All() {
			if slices.Contains(names, l.Name) && len(l.Aliases) > 0 {
				aliases = append(aliases, strings.Join(l.Aliases, " or ")+" for "+l.Name)
			}
		}
		if len(aliases) > 0 {
			p.Description += " (aliases are taken too: " + strings.Join(aliases, ", ") + ")"
		}
	}
}

// canonicalLanguage returns the canonical name of a language name or
// alias as lang.Lookup resolves it for REST and the CLI (ignoring case
// and surrounding spaces), and false for a name it does not know.
func canonicalLanguage(name string) (string, bool) {
	l, err := lang.Lookup(name)
	if err != nil {
		return "", false
	}
	return l.Name, true
}

// languageSpellings maps each name and alias of the given languages to
// the language's name, for suggestions: a typo of an alias ("pyton3")
// suggests the language.
func languageSpellings(names []string) map[string]string {
	spellings := map[string]string{}
	for _, l := range lang.All() {
		if !slices.Contains(names, l.Name) {
			continue
		}
		spellings[l.Name] = l.Name
		for _, a := range l.Aliases {
			spellings[a] = l.Name
		}
	}
	return spellings
}

// languageAlias returns the canonical name that the value v of argument
// name stands for, when the argument is a language given by another of
// its names ("py", "Python") and the schema's enum holds that language.
// A language the tool does not take ("sh" for run_in_context) is left as
// it is, for the enum's error to name.
func languageAlias(name string, p *jsonschema.Schema, v any) (string, bool) {
	s, ok := v.(string)
	if name != languageArgument || !ok || slices.Contains(p.Enum, v) {
		return "", false
	}
	c, ok := canonicalLanguage(s)
	if !ok || !slices.Contains(p.Enum, any(c)) {
		return "", false
	}
	return c, true
}
