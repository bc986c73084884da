package fakepds

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
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

const (
	dnsTypeA     = 1
	dnsClassIN   = 1
	dnsNXDomain  = 3
	dnsNotImpl   = 4
	dnsHeaderLen = 12
)

// answer builds the response to one query; malformed packets get none.
func (d *DNS) answer(q []byte) ([]byte, bool) {
	if len(q) < dnsHeaderLen || q[2]&0x80 != 0 { // too short, or itself a response
		return nil, false
	}
	if binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil, false // one question per query is all resolvers send
	}
	// The question: labels, then type and class.
	var labels []string
	i := dnsHeaderLen
	for {
		if i >= len(q) {
			return nil, false
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil, false
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil, false
	}
	qtype, qclass := binary.BigEndian.Uint16(q[i:]), binary.BigEndian.Uint16(q[i+2:])
	question := q[dnsHeaderLen : i+4]

	resp := make([]byte, dnsHeaderLen, dnsHeaderLen+len(question)+16)
	copy(resp, q[:2])              // ID
	resp[2] = 0x84 | (q[2] & 0x79) // QR, AA; opcode and RD as asked
	binary.BigEndian.PutUint16(resp[4:], 1)
	resp = append(resp, question...)
	switch {
	case q[2]&0x78 != 0: // an opcode other than QUERY
		resp[3] = dnsNotImpl
	case !d.names[strings.ToLower(strings.Join(labels, "."))]:
		resp[3] = dnsNXDomain
	case qtype == dnsTypeA && qclass == dnsClassIN:
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, 0xc0, dnsHeaderLen) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, dnsTypeA)
		resp = binary.BigEndian.AppendUint16(resp, dnsClassIN)
		resp = binary.BigEndian.AppendUint32(resp, 60) // TTL, seconds
		resp = binary.BigEndian.AppendUint16(resp, 4)
		resp = append(resp, d.ip[:]...)
	}
	// A known name asked for another type (AAAA): no error, no records, so a
	// resolver asking A and AAAA together settles on the A answer.
	return resp, true
}
