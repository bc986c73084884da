// Package relay runs the system under test: it builds or names a relay
// image, starts it in a container wired to the fake network, onboards the
// fleet's hosts, streams its log to a file and reports how it exits.
//
// Each relay's habits live in a Profile. The package must not know how
// traffic is generated or how memory is judged.
package relay
