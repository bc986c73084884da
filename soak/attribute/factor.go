package attribute

// Factor names one load factor whose cumulative count the rig records exactly.
type Factor string

const (
	// Frames is commits delivered to consumers.
	Frames Factor = "frames"
	// Resolutions is DID resolutions caused (identity events, key rotations,
	// new accounts, moves, or the relay's own resolver counter).
	Resolutions Factor = "resolutions"
	// HostReconnects is upstream host reconnects (outages).
	HostReconnects Factor = "host_reconnects"
	// ConsumerReconnects is downstream consumer reconnects, cut-offs, resets:
	// counted as the sessions that ended, each followed by a reconnect.
	ConsumerReconnects Factor = "consumer_reconnects"
	// NewIdentities is client identities the relay had not seen before,
	// presented by the consumers: what a relay keys by client and never
	// forgets grows with them.
	NewIdentities Factor = "new_identities"
	// Time is the model's own regressor, in seconds: growth that follows
	// time and no factor.
	Time Factor = "time"
)

// AllFactors are the load factors in the order plans raise them.
var AllFactors = []Factor{Frames, Resolutions, HostReconnects, ConsumerReconnects, NewIdentities}

// Unit is the singular word for one count of f.
func (f Factor) Unit() string {
	switch f {
	case Frames:
		return "frame"
	case Resolutions:
		return "resolution"
	case HostReconnects:
		return "host reconnect"
	case ConsumerReconnects:
		return "consumer reconnect"
	case NewIdentities:
		return "new consumer identity"
	case Time:
		return "s"
	}
	return string(f)
}

// Label is how f is named in sentences and tables.
func (f Factor) Label() string {
	switch f {
	case Frames:
		return "frames"
	case Resolutions:
		return "DID resolutions"
	case HostReconnects:
		return "host reconnects"
	case ConsumerReconnects:
		return "consumer reconnects"
	case NewIdentities:
		return "new consumer identities"
	case Time:
		return "time"
	}
	return string(f)
}
