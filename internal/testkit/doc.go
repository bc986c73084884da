// Package testkit holds the helpers the project's tests share: a writer
// that sends lines to the test log, checks that a test left no Docker
// container, network or volume behind, images built once per test binary,
// virtual hosts on loopback, a websocket frame counter, and the harness
// that runs a benchmark's subject in a child process.
//
// It imports no package of this module, only the standard library and
// third-party modules: fakepds, replay, relay and soak tests all use it,
// and a kit that imported one of them would make a lower package's tests
// depend on a higher one. What a helper needs from the module (a label, a
// build function, a path) its caller passes in.
package testkit
