package dockerapi

import "time"

// SetStatsInterval shortens the period of streamed stats for tests.
func (s *Server) SetStatsInterval(d time.Duration) { s.statsInterval = d }

// SetReadyGrace shortens the wait for a Backend's ready signals.
func (s *Server) SetReadyGrace(d time.Duration) { s.readyGrace = d }
