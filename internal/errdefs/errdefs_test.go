package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestMessage(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("boom"), "boom"},
		{"wrapped kind", fmt.Errorf("no such image: x: %w", ErrNotFound), "no such image: x"},
		{"kind twice", fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", ErrInvalid)), "outer: inner"},
		{"text that only looks like a kind", errors.New("thing: not found"), "thing: not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Message(c.err); got != c.want {
				t.Fatalf("Message = %q, want %q", got, c.want)
			}
		})
	}
}
