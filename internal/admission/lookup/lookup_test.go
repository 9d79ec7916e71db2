package lookup

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLive(t *testing.T) {
	now := time.Unix(0, 0)
	l := &Live[string]{TTL: 30 * time.Second, Now: func() time.Time { return now }}
	reads := 0
	list := func() ([]string, error) { reads++; return []string{"a", "b"}, nil }
	for range 3 {
		items, err := l.Get("ns", list)
		if err != nil || len(items) != 2 || *items[1] != "b" {
			t.Fatalf("Get = %v, %v", items, err)
		}
	}
	if reads != 1 {
		t.Fatalf("%d reads within the TTL, want 1", reads)
	}
	now = now.Add(31 * time.Second)
	l.Get("ns", list)
	l.Get("other", list)
	if reads != 3 {
		t.Fatalf("%d reads, want a new one after the TTL and one per namespace", reads)
	}
	boom := errors.New("boom")
	if _, err := l.Get("x", func() ([]string, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitForSync(t *testing.T) {
	if err := WaitForSync(context.Background(), time.Second, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	if err := WaitForSync(context.Background(), 50*time.Millisecond, func() bool { return false }); !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
}
