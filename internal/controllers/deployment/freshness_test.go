package deployment

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFreshness(t *testing.T) {
	at := func(rv string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}
	}
	f := freshness{wrote: map[string]written{}}
	if f.behind("ns/d") {
		t.Error("behind with no writes")
	}
	f.observe(at("10"))
	f.record("ns/d", at("12"))
	if !f.behind("ns/d") {
		t.Error("not behind a write the cache has not delivered")
	}
	if f.behind("ns/other") {
		t.Error("another deployment is held back")
	}
	f.observe(at("11"))
	if !f.behind("ns/d") {
		t.Error("caught up by an older version")
	}
	f.observe(at("13"))
	if f.behind("ns/d") {
		t.Error("still behind once the cache moved past the write")
	}
	f.observe(at("5")) // a relist may deliver older versions
	if f.seen.Load() != 13 {
		t.Errorf("seen went back to %d", f.seen.Load())
	}

	f.record("ns/d", at("20"))
	f.wrote["ns/d"] = written{rv: 20, at: time.Now().Add(-freshnessTimeout - time.Second)}
	if f.behind("ns/d") {
		t.Error("a write never seen holds the deployment back past the timeout")
	}
	f.record("ns/d", at("not-a-number"))
	if f.behind("ns/d") {
		t.Error("an unparsable resourceVersion holds the deployment back")
	}
}
