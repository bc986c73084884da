package fakepds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS answers A queries for the fleet's names with one IPv4 address. It is
// for relays whose resolver can be pointed at a server but whose hosts file
// cannot be written: docker-compose mounts no generated file, but a
// container's `dns:` setting makes Docker's embedded resolver forward every
// name it does not know (pds0001.test, plc.test) here, for any host count.
type DNS struct {
	ip    [4]byte
	names map[string]bool
}

// NewDNS answers for every name the fleet answers to, with ip.
func (f *Fleet) NewDNS(ip net.IP) (*DNS, error) {
	v4 := ip.To4()
	if v4 == nil {
		return nil, fmt.Errorf("fakepds dns: %q is not an IPv4 address; the fleet's DNS answers A records only", ip)
	}
	d := &DNS{names: map[string]bool{}}
	copy(d.ip[:], v4)
	for _, n := range append(f.Names(), f.HostNames()...) {
		d.names[strings.ToLower(n)] = true
	}
	return d, nil
}

// Serve answers queries on pc until ctx ends or pc is closed.
func (d *DNS) Serve(ctx context.Context, pc net.PacketConn) error {
	go func() { <-ctx.Done(); pc.Close() }()
	buf := make([]byte, 512) // classic DNS over UDP: a query fits in 512 bytes
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("fakepds dns: reading on %s: %w", pc.LocalAddr(), err)
		}
		if resp, ok := d.answer(buf[:n]); ok {
			pc.WriteTo(resp, addr) // a lost answer is retried by the client
		}
	}
}

// answer builds the response to one query; malformed packets get none.
func (d *DNS) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	qh, err := p.Start(query)
	if err != nil || qh.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	if _, err := p.Question(); err != dnsmessage.ErrSectionDone {
		return nil, false // one question per query is all resolvers send
	}

	rh := dnsmessage.Header{ID: qh.ID, Response: true, Authoritative: true,
		OpCode: qh.OpCode, RecursionDesired: qh.RecursionDesired}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	answerA := false
	switch {
	case qh.OpCode != 0: // anything but QUERY
		rh.RCode = dnsmessage.RCodeNotImplemented
	case !d.names[name]:
		rh.RCode = dnsmessage.RCodeNameError
	case q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET:
		answerA = true
	}
	// A known name asked for another type (AAAA): no error, no records, so a
	// resolver asking A and AAAA together settles on the A answer.

	b := dnsmessage.NewBuilder(make([]byte, 0, 512), rh)
	b.EnableCompression() // the answer's name points at the question's
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if answerA {
		if err := b.StartAnswers(); err != nil {
			return nil, false
		}
		rr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}
		if err := b.AResource(rr, dnsmessage.AResource{A: d.ip}); err != nil {
			return nil, false
		}
	}
	resp, err := b.Finish()
	return resp, err == nil
}
