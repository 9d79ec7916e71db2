package deployment

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// podTemplateHash names a pod template the way upstream's
// pod-template-hash does, without promising upstream's exact values: FNV-1a
// (32 bits) over a canonical encoding of the template, then over the
// collision count when there is one, written as a decimal string and
// re-encoded with rand.SafeEncodeString (no vowels, so no words). A
// collision (another template with the same name) is resolved by bumping
// status.collisionCount, which changes the hash.
//
// The canonical encoding is the template's JSON: struct fields in
// declaration order and map keys sorted, so equal templates hash equally.
func podTemplateHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	doc, err := json.Marshal(template)
	if err != nil {
		// A PodTemplateSpec always encodes; keep the hash total anyway.
		doc = []byte(template.String())
	}
	h.Write(doc)
	if collisionCount != nil {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(*collisionCount))
		h.Write(b[:])
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}
