// Package relay runs the system under test: it builds or names a relay
// image, starts it in a container wired to the fake network, onboards the
// fleet's hosts, streams its log to a file and reports how it exits.
//
// Each relay's habits live in a Profile: its Facts (ports, health path,
// which metrics carry memory, how it stops) and what it does (how PLC and
// hosts are configured, how hosts are onboarded); Indigo is the profile of indigo's cmd/relay, whose image is
// built here, static and FROM scratch, at the version pinned in go.mod
// (EnsureIndigoImage; `make relay-image`). Zlay and Rsky are profiles of
// relays that cannot be built here, and LoadGeneric reads a profile for
// any other relay from a file the user writes; profiles whose relays
// hard-code names of the real network, dial only wss:// or cannot trust a
// private CA say so (NetworkNeeds) and the rig shapes the fleet to match.
//
// A Runner makes a Docker network per run; the fleet listens on that
// network's gateway (ports 80 and 443), and a generated hosts file mounted
// over the container's /etc/hosts sends every fleet name there. The runner
// waits for health with a deadline, watches the container for exits, OOM
// kills and restarts (exit code, OOM flag, last log lines), and after Stop
// rewrites the log file from the engine's complete log so shutdown output
// is kept. Every container and network it makes is labelled org.relaysoak
// and removed by Close.
//
// The package must not know how traffic is generated or how memory is
// judged.
package relay
