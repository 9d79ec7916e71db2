package printers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func addConfigPrinters(m map[schema.GroupKind]Printer) {
	m[schema.GroupKind{Kind: "ConfigMap"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"]),
		ageColumn(),
	}, func(c *corev1.ConfigMap, now time.Time) []any {
		return []any{c.Name, int64(len(c.Data) + len(c.BinaryData)), age(c.CreationTimestamp, now)}
	})
	secret := corev1.Secret{}.SwaggerDoc()
	m[schema.GroupKind{Kind: "Secret"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Type", "string", secret["type"]),
		column("Data", "string", secret["data"]),
		ageColumn(),
	}, func(s *corev1.Secret, now time.Time) []any {
		return []any{s.Name, string(s.Type), secretKeys(s), age(s.CreationTimestamp, now)}
	})
	m[schema.GroupKind{Kind: "ServiceAccount"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Secrets", "string", corev1.ServiceAccount{}.SwaggerDoc()["secrets"]),
		ageColumn(),
	}, func(sa *corev1.ServiceAccount, now time.Time) []any {
		return []any{sa.Name, int64(len(sa.Secrets)), age(sa.CreationTimestamp, now)}
	})
	m[schema.GroupKind{Kind: "ResourceQuota"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
		column("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
		ageColumn(),
	}, resourceQuotaCells)
}

// secretKeys counts the keys of data and stringData together: upstream
// counts after converting to its internal type, which folds stringData into
// data.
func secretKeys(s *corev1.Secret) int64 {
	n := len(s.Data)
	for k := range s.StringData {
		if _, dup := s.Data[k]; !dup {
			n++
		}
	}
	return int64(n)
}

// resourceQuotaCells lists "resource: used/hard" for every hard limit,
// sorted by name; "limits.*" resources go to the Limit cell, the rest to
// Request.
func resourceQuotaCells(q *corev1.ResourceQuota, now time.Time) []any {
	names := make([]string, 0, len(q.Status.Hard))
	for name := range q.Status.Hard {
		names = append(names, string(name))
	}
	sort.Strings(names)

	var requests, limits []string
	for _, name := range names {
		used, hard := q.Status.Used[corev1.ResourceName(name)], q.Status.Hard[corev1.ResourceName(name)]
		entry := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
		if strings.HasPrefix(name, "limits.") {
			limits = append(limits, entry)
		} else {
			requests = append(requests, entry)
		}
	}
	return []any{q.Name, strings.Join(requests, ", "), strings.Join(limits, ", "), age(q.CreationTimestamp, now)}
}
