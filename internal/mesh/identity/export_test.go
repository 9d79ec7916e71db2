package identity

import "k8s.io/apimachinery/pkg/types"

// Holds reports whether m keeps an identity for uid.
func (m *Manager) Holds(uid types.UID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.entries[uid]
	return ok
}
