package faultproxy

import (
	"errors"
	"fmt"
)

// Mesh is one proxy per ordered pair of named targets, so a test can cut
// the links between data centers one DC at a time.
//
// A NATS route is bidirectional once established: a route dialled by A to
// B carries traffic both ways, and the pair keeps whichever route came up
// first. Which side dialled is a race, so isolating A must cut both (A→B)
// and (B→A) for every B; Isolate does.
//
// NATS also gossips each server's real route address to the others. A
// server that hears of a peer before its configured route through the mesh
// is up may dial that address directly, past the mesh; tests should check
// that traffic went through the mesh (Proxy(from, to).Stats()).
type Mesh struct {
	names   map[string]bool
	proxies map[pair]*Proxy
}

type pair struct{ from, to string }

// NewMesh starts a proxy on a loopback port for every ordered pair of
// distinct names in targets, which maps names to the addresses to reach
// them at.
func NewMesh(targets map[string]string) (*Mesh, error) {
	m := &Mesh{names: map[string]bool{}, proxies: map[pair]*Proxy{}}
	for from := range targets {
		m.names[from] = true
		for to, addr := range targets {
			if from == to {
				continue
			}
			p, err := New("127.0.0.1:0", addr)
			if err != nil {
				m.Close()
				return nil, fmt.Errorf("proxy %s→%s: %w", from, to, err)
			}
			m.proxies[pair{from, to}] = p
		}
	}
	return m, nil
}

// Addr is the address from should dial to reach to.
// It panics if either name is not in the mesh.
func (m *Mesh) Addr(from, to string) string { return m.Proxy(from, to).Addr() }

// Proxy is the proxy on the link from from to to, for faults on one link
// only (SetDelay, Cut) and for its Stats. It panics if either name is not
// in the mesh: a misspelt name would otherwise surface later as a test
// that passes because it cut nothing.
func (m *Mesh) Proxy(from, to string) *Proxy {
	p, ok := m.proxies[pair{from, to}]
	if !ok {
		panic(fmt.Sprintf("faultproxy: no link %s→%s in the mesh", from, to))
	}
	return p
}

// Isolate cuts every link into and out of name; links between the other
// names keep flowing. It panics if name is not in the mesh.
func (m *Mesh) Isolate(name string) {
	if !m.names[name] {
		panic(fmt.Sprintf("faultproxy: no %s in the mesh", name))
	}
	for k, p := range m.proxies {
		if k.from == name || k.to == name {
			p.Cut()
		}
	}
}

// Blackout silences every link into and out of name: nothing closes and
// nothing arrives. It panics if name is not in the mesh.
func (m *Mesh) Blackout(name string) {
	if !m.names[name] {
		panic(fmt.Sprintf("faultproxy: no %s in the mesh", name))
	}
	for k, p := range m.proxies {
		if k.from == name || k.to == name {
			p.Silence()
		}
	}
}

// HealAll heals every link.
func (m *Mesh) HealAll() {
	for _, p := range m.proxies {
		p.Heal()
	}
}

// Close closes every proxy and waits for their goroutines.
func (m *Mesh) Close() error {
	var errs []error
	for _, p := range m.proxies {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
