package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Etcd implements Interface over an etcd v3 client.
type Etcd struct {
	cli *clientv3.Client
}

var _ Interface = (*Etcd)(nil)

// NewEtcd wraps a connected client. The caller owns and closes cli.
func NewEtcd(cli *clientv3.Client) *Etcd { return &Etcd{cli: cli} }

func (e *Etcd) Get(ctx context.Context, key string) (KV, error) {
	resp, err := e.cli.Get(ctx, key)
	if err != nil {
		return KV{}, wrapErr(key, err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, fmt.Errorf("key %q: %w", key, ErrNotFound)
	}
	kv := resp.Kvs[0]
	return KV{Key: key, Value: kv.Value, Rev: kv.ModRevision}, nil
}

func (e *Etcd) List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error) {
	start := prefix
	if opts.StartKey != "" {
		start = opts.StartKey
	}
	ops := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))}
	if opts.Limit > 0 {
		ops = append(ops, clientv3.WithLimit(opts.Limit))
	}
	if opts.Rev > 0 {
		ops = append(ops, clientv3.WithRev(opts.Rev))
	}
	resp, err := e.cli.Get(ctx, start, ops...)
	if err != nil {
		return ListResult{}, wrapErr(prefix, err)
	}
	res := ListResult{Rev: resp.Header.Revision, More: resp.More, Items: make([]KV, len(resp.Kvs))}
	for i, kv := range resp.Kvs {
		res.Items[i] = KV{Key: string(kv.Key), Value: kv.Value, Rev: kv.ModRevision}
	}
	if resp.More {
		res.Remaining = resp.Count - int64(len(resp.Kvs))
	}
	return res, nil
}

func (e *Etcd) Count(ctx context.Context, prefix string) (int64, error) {
	resp, err := e.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, wrapErr(prefix, err)
	}
	return resp.Count, nil
}

func (e *Etcd) Create(ctx context.Context, key string, value []byte) (int64, error) {
	resp, err := e.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).
		Commit()
	if err != nil {
		return 0, wrapErr(key, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("key %q: %w", key, ErrAlreadyExists)
	}
	return resp.Header.Revision, nil
}

func (e *Etcd) Update(ctx context.Context, key string, value []byte, rev int64) (int64, error) {
	resp, err := e.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(value))).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, wrapErr(key, err)
	}
	if !resp.Succeeded {
		return 0, missingOrConflict(key, resp)
	}
	return resp.Header.Revision, nil
}

func (e *Etcd) Delete(ctx context.Context, key string, rev int64) (KV, error) {
	cmp := clientv3.Compare(clientv3.CreateRevision(key), ">", 0)
	if rev > 0 {
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", rev)
	}
	resp, err := e.cli.Txn(ctx).
		If(cmp).
		Then(clientv3.OpDelete(key, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return KV{}, wrapErr(key, err)
	}
	if !resp.Succeeded {
		return KV{}, missingOrConflict(key, resp)
	}
	del := resp.Responses[0].GetResponseDeleteRange()
	if del == nil || len(del.PrevKvs) == 0 {
		return KV{}, fmt.Errorf("key %q: %w", key, ErrNotFound)
	}
	prev := del.PrevKvs[0]
	return KV{Key: key, Value: prev.Value, Rev: resp.Header.Revision}, nil
}

func missingOrConflict(key string, resp *clientv3.TxnResponse) error {
	if get := resp.Responses[0].GetResponseRange(); get != nil && len(get.Kvs) == 0 {
		return fmt.Errorf("key %q: %w", key, ErrNotFound)
	}
	return fmt.Errorf("key %q: %w", key, ErrConflict)
}

func (e *Etcd) Watch(ctx context.Context, prefix string, rev int64) <-chan WatchResult {
	out := make(chan WatchResult, 16)
	go func() {
		defer close(out)
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer cancel()
		wch := e.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1),
			clientv3.WithPrevKV(), clientv3.WithProgressNotify())
		for resp := range wch {
			var res WatchResult
			switch {
			case resp.CompactRevision != 0:
				res.Err = fmt.Errorf("watch %q from %d: %w", prefix, rev, ErrCompacted)
			case resp.Err() != nil:
				res.Err = wrapErr(prefix, resp.Err())
			case resp.IsProgressNotify():
				res.Progress, res.Rev = true, resp.Header.Revision
			default:
				res.Events = make([]Event, len(resp.Events))
				for i, ev := range resp.Events {
					e := Event{Key: string(ev.Kv.Key), Rev: ev.Kv.ModRevision, Value: ev.Kv.Value, Created: ev.IsCreate()}
					if ev.Type == clientv3.EventTypeDelete {
						e.Type, e.Value = Delete, nil
					}
					if ev.PrevKv != nil {
						e.Prev = ev.PrevKv.Value
					}
					res.Events[i] = e
				}
				res.Rev = resp.Header.Revision
			}
			select {
			case out <- res:
			case <-ctx.Done():
				return
			}
			if res.Err != nil {
				return
			}
		}
	}()
	return out
}

func (e *Etcd) CurrentRev(ctx context.Context) (int64, error) {
	resp, err := e.cli.Get(ctx, "/", clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if err != nil {
		return 0, wrapErr("/", err)
	}
	return resp.Header.Revision, nil
}

func (e *Etcd) Ready(ctx context.Context) error {
	_, err := e.CurrentRev(ctx)
	return err
}

// RunCompactor compacts history older than interval, every interval, the
// way kube-apiserver does, until ctx ends. Several servers sharing one etcd
// may all run it: compacting an already compacted revision is harmless.
func (e *Etcd) RunCompactor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := e.CurrentRev(ctx)
		if err != nil {
			continue
		}
		if last > 0 {
			_, _ = e.cli.Compact(ctx, last)
		}
		last = rev
	}
}

func wrapErr(key string, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrGRPCCompacted):
		return fmt.Errorf("key %q: %w: %v", key, ErrCompacted, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("key %q: %w", key, err)
	default:
		return fmt.Errorf("key %q: %w: %v", key, ErrUnavailable, err)
	}
}
