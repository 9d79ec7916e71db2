// Package storetest is the conformance suite every store.Interface
// implementation must pass. Tests of implementations call Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"skiff.dev/skiff/internal/store"
)

// Run exercises s. The store must be empty under the prefix "/t/".
func Run(t *testing.T, s store.Interface) {
	ctx := context.Background()
	t.Run("CreateGet", func(t *testing.T) {
		rev, err := s.Create(ctx, "/t/a/1", []byte("one"))
		if err != nil {
			t.Fatal(err)
		}
		kv, err := s.Get(ctx, "/t/a/1")
		if err != nil || string(kv.Value) != "one" || kv.Rev != rev {
			t.Fatalf("get = %+v, %v; want one@%d", kv, err, rev)
		}
		if _, err := s.Create(ctx, "/t/a/1", []byte("again")); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("second create: %v, want ErrAlreadyExists", err)
		}
		if _, err := s.Get(ctx, "/t/a/missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get missing: %v, want ErrNotFound", err)
		}
	})
	t.Run("UpdateConflict", func(t *testing.T) {
		rev, _ := s.Create(ctx, "/t/b/1", []byte("v1"))
		rev2, err := s.Update(ctx, "/t/b/1", []byte("v2"), rev)
		if err != nil || rev2 <= rev {
			t.Fatalf("update = %d, %v", rev2, err)
		}
		if _, err := s.Update(ctx, "/t/b/1", []byte("v3"), rev); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale update: %v, want ErrConflict", err)
		}
		if _, err := s.Update(ctx, "/t/b/none", []byte("x"), 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update missing: %v, want ErrNotFound", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		rev, _ := s.Create(ctx, "/t/c/1", []byte("v"))
		if _, err := s.Delete(ctx, "/t/c/1", rev+100); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("delete stale: %v, want ErrConflict", err)
		}
		kv, err := s.Delete(ctx, "/t/c/1", rev)
		if err != nil || string(kv.Value) != "v" {
			t.Fatalf("delete = %+v, %v", kv, err)
		}
		if _, err := s.Delete(ctx, "/t/c/1", 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete again: %v, want ErrNotFound", err)
		}
	})
	t.Run("ListPages", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			if _, err := s.Create(ctx, fmt.Sprintf("/t/d/%d", i), []byte{byte('0' + i)}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.List(ctx, "/t/d/", store.ListOptions{Limit: 2})
		if err != nil || len(page.Items) != 2 || !page.More || page.Remaining != 3 {
			t.Fatalf("page 1 = %+v, %v", page, err)
		}
		next, err := s.List(ctx, "/t/d/", store.ListOptions{Limit: 10, StartKey: page.Items[1].Key + "\x00", Rev: page.Rev})
		if err != nil || len(next.Items) != 3 || next.More {
			t.Fatalf("page 2 = %+v, %v", next, err)
		}
		if n, err := s.Count(ctx, "/t/d/"); err != nil || n != 5 {
			t.Fatalf("count = %d, %v", n, err)
		}
	})
	t.Run("Watch", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start, _ := s.CurrentRev(ctx)
		ch := s.Watch(wctx, "/t/e/", start)
		rev, _ := s.Create(ctx, "/t/e/1", []byte("a"))
		rev, _ = s.Update(ctx, "/t/e/1", []byte("b"), rev)
		s.Delete(ctx, "/t/e/1", rev)
		var got []string
		for len(got) < 3 {
			select {
			case res := <-ch:
				if res.Err != nil {
					t.Fatal(res.Err)
				}
				for _, e := range res.Events {
					got = append(got, fmt.Sprintf("%d:%s:%s", e.Type, e.Value, e.Prev))
				}
			case <-wctx.Done():
				t.Fatalf("watch got %v before timeout", got)
			}
		}
		want := []string{"0:a:", "0:b:a", "1::b"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		// Resuming from the first event's revision replays the rest.
		ch2 := s.Watch(wctx, "/t/e/", start+1)
		res := <-ch2
		if res.Err != nil || len(res.Events) == 0 || res.Events[0].Rev != start+2 {
			t.Fatalf("resume = %+v", res)
		}
	})
}
