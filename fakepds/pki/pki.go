// Package pki is the certificate authority of one run: it makes a CA, writes
// it to the run's directory for the relay under test to trust, and mints a
// leaf certificate per TLS server name on demand, so the fake network can
// serve https for any name it impersonates (plc.test today, plc.directory or
// a PDS name later).
//
// It must not know which names exist or who serves them: names arrive by SNI.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// File names inside the directory the caller names.
const (
	CertFile = "ca.pem"
	KeyFile  = "ca-key.pem"
)

// Config describes the CA. Zero values are sensible defaults.
type Config struct {
	// Dir is where ca.pem and ca-key.pem are written: the run's directory
	// only, never a shared or system location. Required.
	Dir string
	// CommonName of the CA; default "relaysoak run CA".
	CommonName string
	// Validity of the CA and of every leaf; default 7 days (a soak is long,
	// but a CA made for one run should not outlive it by much).
	Validity time.Duration
	// CacheSize bounds the number of leaves kept; default 4096. A leaf that
	// falls out is minted again on the next handshake for its name.
	CacheSize int
}

// CA is a certificate authority made for one run.
type CA struct {
	cert     *x509.Certificate
	certDER  []byte
	key      *ecdsa.PrivateKey
	certPath string
	validity time.Duration

	leaves *lru.Cache[string, *tls.Certificate] // by server name

	mu     sync.Mutex // makes counting a mint and caching it one step
	minted uint64
}

// newCA holds an already made or loaded CA; cfg has its defaults filled in.
func newCA(cfg Config, cert *x509.Certificate, der []byte, key *ecdsa.PrivateKey, certPath string) (*CA, error) {
	leaves, err := lru.New[string, *tls.Certificate](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("pki: leaf cache of %d: %w", cfg.CacheSize, err)
	}
	return &CA{cert: cert, certDER: der, key: key, certPath: certPath, validity: cfg.Validity, leaves: leaves}, nil
}

// New makes a fresh CA and writes it to cfg.Dir.
func New(cfg Config) (*CA, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pki: Config.Dir is required (the run's directory)")
	}
	if cfg.CommonName == "" {
		cfg.CommonName = "relaysoak run CA"
	}
	if cfg.Validity <= 0 {
		cfg.Validity = 7 * 24 * time.Hour
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 4096
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cfg.CommonName, Organization: []string{"relaysoak"}},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew with the container
		NotAfter:              now.Add(cfg.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: self-signing CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing CA: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pki: creating %s: %w", cfg.Dir, err)
	}
	certPath := filepath.Join(cfg.Dir, CertFile)
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("pki: writing %s: %w", certPath, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding CA key: %w", err)
	}
	keyPath := filepath.Join(cfg.Dir, KeyFile)
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("pki: writing %s: %w", keyPath, err)
	}
	return newCA(cfg, cert, der, key, certPath)
}

// CertPath is the absolute path of ca.pem, to mount into the relay container
// (SSL_CERT_FILE for a Go relay, over the system bundle for others).
func (ca *CA) CertPath() string { p, _ := filepath.Abs(ca.certPath); return p }

// Certificate is the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool is a cert pool holding only this CA, for the rig's own TLS clients.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Minted is how many leaves were minted so far (cache misses included).
func (ca *CA) Minted() uint64 { ca.mu.Lock(); defer ca.mu.Unlock(); return ca.minted }

// TLSConfig serves any SNI name with a leaf minted by this CA.
func (ca *CA) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
			if name == "" {
				// A client dialling by IP sends no SNI; name the leaf after the
				// local address so the handshake fails on verification, not here.
				if hello.Conn != nil {
					if h, _, err := net.SplitHostPort(hello.Conn.LocalAddr().String()); err == nil {
						name = h
					}
				}
				if name == "" {
					return nil, errors.New("pki: client sent no server name")
				}
			}
			return ca.Leaf(name)
		},
	}
}

// Leaf returns the certificate for name, minting and caching it when needed.
func (ca *CA) Leaf(name string) (*tls.Certificate, error) {
	if c, ok := ca.leaves.Get(name); ok {
		return c, nil
	}
	// Minting outside the lock: two handshakes for a new name may both mint;
	// the second is served the first's leaf, both are valid.
	c, err := ca.mint(name)
	if err != nil {
		return nil, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.minted++
	if prev, ok := ca.leaves.Get(name); ok {
		return prev, nil
	}
	ca.leaves.Add(name, c)
	return c, nil
}

// Cached is the number of leaves currently cached.
func (ca *CA) Cached() int { return ca.leaves.Len() }

func (ca *CA) mint(name string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating key for %q: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ca.validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: signing leaf for %q: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing leaf for %q: %w", name, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.certDER}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("pki: reading randomness: %v", err))
	}
	return n
}

// Open loads the CA that New wrote to cfg.Dir, or makes one there when the
// directory holds none: a relay running elsewhere is told to trust a CA
// once, and later runs keep serving certificates it already trusts.
func Open(cfg Config) (*CA, error) {
	certPath, keyPath := filepath.Join(cfg.Dir, CertFile), filepath.Join(cfg.Dir, KeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return New(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s: %w", certPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s (the CA's key must sit beside %s): %w", keyPath, CertFile, err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("pki: %s or %s is not PEM", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing %s: %w", certPath, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing %s: %w", keyPath, err)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("pki: the CA in %s expired on %s: remove it to make a new one", certPath, cert.NotAfter.Format(time.DateOnly))
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 4096
	}
	if cfg.Validity <= 0 {
		cfg.Validity = time.Until(cert.NotAfter)
	}
	return newCA(cfg, cert, cb.Bytes, key, certPath)
}
