// Package cove holds cove's domain types, its error codes and the Service
// interface that every front end (CLI, REST, MCP, web UI, Go SDK) speaks.
//
// The in-process implementation lives in internal/service; package client
// implements the same interface over HTTP.
package cove
