package fakepds

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// ServeHTTP routes by Host header: a PDS host, the PLC directory or the
// upstream relay face. It never sends a Server header (a relay bans hosts
// whose Server header says atproto-relay).
func (f *Fleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := canonicalHost(r.Host)
	switch f.faces[name] {
	case facePLC:
		f.servePLC(w, r)
		return
	case faceUpstream:
		f.serveUpstream(w, r)
		return
	}
	h := f.byName[name]
	if h == nil {
		xrpcError(w, http.StatusNotFound, "UnknownHost", fmt.Sprintf("no host named %q in this fleet (hosts are %s … %s, PLC %s, upstream %s)",
			r.Host, f.hosts[0].name, f.hosts[len(f.hosts)-1].name, f.cfg.PLCName, f.cfg.UpstreamName))
		return
	}
	f.servePDS(w, r, h)
}

func (f *Fleet) servePDS(w http.ResponseWriter, r *http.Request, h *host) {
	method, ok := strings.CutPrefix(r.URL.Path, "/xrpc/")
	if !ok {
		xrpcError(w, http.StatusNotFound, "NotFound", "no such route: "+r.URL.Path)
		return
	}
	q := r.URL.Query()
	switch method {
	case "_health":
		writeJSON(w, http.StatusOK, map[string]string{"version": "relaysoak-fakepds"})
	case "com.atproto.sync.subscribeRepos":
		f.serveSubscribe(w, r, h)
	case "com.atproto.server.describeServer":
		writeJSON(w, http.StatusOK, map[string]any{
			"did":                  "did:web:" + h.name,
			"availableUserDomains": []string{"." + h.name},
			"inviteCodeRequired":   false,
		})
	case "com.atproto.sync.listRepos":
		f.serveListRepos(w, q.Get("limit"), q.Get("cursor"), h)
	case "com.atproto.sync.getRepoStatus", "com.atproto.sync.getLatestCommit", "com.atproto.sync.getRepo":
		a, status, code, msg := f.accountOn(h, q.Get("did"))
		if a == nil {
			xrpcError(w, status, code, msg)
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		switch method {
		case "com.atproto.sync.getRepoStatus":
			out := map[string]any{"did": a.did, "active": a.active.Load()}
			if a.status != "" {
				out["status"] = a.status
			}
			if a.rev != "" {
				out["rev"] = a.rev
			}
			writeJSON(w, http.StatusOK, out)
		case "com.atproto.sync.getLatestCommit":
			if !a.commitCID.Defined() {
				xrpcError(w, http.StatusNotFound, "RepoNotFound", "repository of "+a.did+" has no commit yet")
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"cid": a.commitCID.String(), "rev": a.rev})
		case "com.atproto.sync.getRepo":
			car, err := f.repoCAR(r.Context(), a)
			if err != nil {
				xrpcError(w, http.StatusInternalServerError, "InternalServerError", err.Error())
				return
			}
			w.Header().Set("Content-Type", "application/vnd.ipld.car")
			w.Write(car)
		}
	default:
		xrpcError(w, http.StatusNotImplemented, "MethodNotImplemented", "this fake PDS does not serve "+method)
	}
}

// accountOn finds a DID hosted on h, or says why not as an XRPC error.
func (f *Fleet) accountOn(h *host, did string) (*account, int, string, string) {
	if did == "" {
		return nil, http.StatusBadRequest, "InvalidRequest", "query parameter did is required"
	}
	if _, err := syntax.ParseDID(did); err != nil {
		return nil, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("not a valid DID: %q", did)
	}
	f.hostsMu.RLock()
	a := f.accounts[did]
	onHost := a != nil && a.host == h.index
	f.hostsMu.RUnlock()
	if !onHost {
		return nil, http.StatusNotFound, "RepoNotFound", fmt.Sprintf("%s is not hosted on %s", did, h.name)
	}
	return a, 0, "", ""
}

func (f *Fleet) serveListRepos(w http.ResponseWriter, limitS, cursor string, h *host) {
	limit := 500
	if limitS != "" {
		n, err := strconv.Atoi(limitS)
		if err != nil || n < 1 || n > 1000 {
			xrpcError(w, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("limit must be an integer from 1 to 1000, got %q", limitS))
			return
		}
		limit = n
	}
	f.hostsMu.RLock()
	accts := append([]*account(nil), f.hosts[h.index].accounts...)
	f.hostsMu.RUnlock()
	sort.Slice(accts, func(i, j int) bool { return accts[i].did < accts[j].did })
	type repoEntry struct {
		DID    string `json:"did"`
		Head   string `json:"head"`
		Rev    string `json:"rev"`
		Active bool   `json:"active"`
		Status string `json:"status,omitempty"`
	}
	out := struct {
		Cursor string      `json:"cursor,omitempty"`
		Repos  []repoEntry `json:"repos"`
	}{Repos: []repoEntry{}}
	for _, a := range accts {
		if a.did <= cursor {
			continue
		}
		if len(out.Repos) == limit {
			out.Cursor = out.Repos[len(out.Repos)-1].DID
			break
		}
		a.mu.Lock()
		if a.commitCID.Defined() {
			out.Repos = append(out.Repos, repoEntry{DID: a.did, Head: a.commitCID.String(), Rev: a.rev, Active: a.active.Load(), Status: a.status})
		}
		a.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, out)
}

// repoCAR is the whole repository: the head commit, every MST node and
// every record (regenerated from the seed). Callers hold a.mu.
func (f *Fleet) repoCAR(ctx context.Context, a *account) ([]byte, error) {
	if !a.commitCID.Defined() {
		return nil, fmt.Errorf("repository of %s has no commit yet", a.did)
	}
	m := map[string]cid.Cid{}
	var recs []block
	add := func(path string, data []byte) error {
		blk, err := newBlock(data)
		if err != nil {
			return err
		}
		m[path] = blk.cid
		recs = append(recs, blk)
		return nil
	}
	for _, p := range a.recordPaths() {
		if err := add(p, f.recordBytes(a.did, p)); err != nil {
			return nil, err
		}
	}
	if a.profile != nil {
		if err := add(profilePath, a.profile); err != nil {
			return nil, err
		}
	}
	tree, err := mst.LoadTreeFromMap(m)
	if err != nil {
		return nil, fmt.Errorf("rebuild MST of %s: %w", a.did, err)
	}
	sc := getScratch()
	defer putScratch(sc)
	root, err := sc.writeNodes(tree.Root, true)
	if err != nil {
		return nil, err
	}
	if *root != a.dataCID {
		return nil, fmt.Errorf("rebuilt MST of %s has root %s, head commit says %s", a.did, root, a.dataCID)
	}
	return appendCAR(nil, a.commitCID, []block{{cid: a.commitCID, data: a.commitBytes}}, sc.nodes, recs), nil
}

// serveUpstream is the upstream relay face: com.atproto.sync.listHosts.
func (f *Fleet) serveUpstream(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/xrpc/_health", "/_health":
		writeJSON(w, http.StatusOK, map[string]string{"version": "relaysoak-fakepds"})
		return
	case "/xrpc/com.atproto.sync.listHosts":
	default:
		xrpcError(w, http.StatusNotImplemented, "MethodNotImplemented", "the upstream face serves com.atproto.sync.listHosts only, not "+r.URL.Path)
		return
	}
	q := r.URL.Query()
	limit := 200
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			xrpcError(w, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("limit must be an integer from 1 to 1000, got %q", s))
			return
		}
		limit = n
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			xrpcError(w, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("cursor must be a non-negative integer, got %q", c))
			return
		}
		start = n
	}
	type hostEntry struct {
		Hostname     string `json:"hostname"`
		Seq          int64  `json:"seq"`
		AccountCount int64  `json:"accountCount"`
		Status       string `json:"status"`
	}
	out := struct {
		Cursor string      `json:"cursor,omitempty"`
		Hosts  []hostEntry `json:"hosts"`
	}{Hosts: []hostEntry{}}
	for i := start; i < len(f.hosts) && len(out.Hosts) < limit; i++ {
		h := f.hosts[i]
		f.hostsMu.RLock()
		n := len(h.accounts)
		f.hostsMu.RUnlock()
		out.Hosts = append(out.Hosts, hostEntry{Hostname: h.name, Seq: h.headSeq(), AccountCount: int64(n), Status: "active"})
	}
	if end := start + len(out.Hosts); end < len(f.hosts) {
		out.Cursor = strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// xrpcError writes the XRPC error body {"error","message"}.
func xrpcError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}
