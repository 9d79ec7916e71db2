// Package autoscaling converts HorizontalPodAutoscalers between the served
// autoscaling/v1 form and the autoscaling/v2 form Skiff stores.
//
// autoscaling/v1 can only say "target this CPU utilization". Everything else
// a v2 object holds (other metrics, current metric values, conditions,
// behavior) travels through the same annotations upstream uses, so a client
// that reads v1 and writes the object back does not lose it, and objects
// move between Skiff and upstream clusters unchanged. The annotations are
// dropped again on the way back to v2; they never reach storage.
//
// The API server imports it; it imports only API types.
package autoscaling
