package podpreset

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

// Apply merges presets into pod: volumes into the spec; env, envFrom and
// volume mounts into every container and init container; an annotation
// per preset. On any conflict it changes nothing and returns every
// conflict found.
func Apply(pod *corev1.Pod, presets []*settingsv1alpha1.PodPreset) error {
	if len(presets) == 0 {
		return nil
	}
	var errs []error
	volumes, err := mergeVolumes(pod.Spec.Volumes, presets)
	if err != nil {
		errs = append(errs, err)
	}
	type merged struct {
		env     []corev1.EnvVar
		envFrom []corev1.EnvFromSource
		mounts  []corev1.VolumeMount
	}
	mergeAll := func(cs []corev1.Container) []merged {
		out := make([]merged, len(cs))
		for i := range cs {
			var err error
			if out[i].env, err = mergeEnv(cs[i].Env, presets); err != nil {
				errs = append(errs, err)
			}
			if out[i].envFrom, err = mergeEnvFrom(cs[i].EnvFrom, presets); err != nil {
				errs = append(errs, err)
			}
			if out[i].mounts, err = mergeVolumeMounts(cs[i].VolumeMounts, presets); err != nil {
				errs = append(errs, err)
			}
		}
		return out
	}
	containers, inits := mergeAll(pod.Spec.Containers), mergeAll(pod.Spec.InitContainers)
	if len(errs) > 0 {
		return utilerrors.NewAggregate(errs)
	}
	pod.Spec.Volumes = volumes
	for i, m := range containers {
		c := &pod.Spec.Containers[i]
		c.Env, c.EnvFrom, c.VolumeMounts = m.env, m.envFrom, m.mounts
	}
	for i, m := range inits {
		c := &pod.Spec.InitContainers[i]
		c.Env, c.EnvFrom, c.VolumeMounts = m.env, m.envFrom, m.mounts
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	for _, pp := range presets {
		pod.Annotations[fmt.Sprintf("%s/podpreset-%s", AnnotationPrefix, pp.Name)] = pp.ResourceVersion
	}
	return nil
}

// mergeEnv adds the presets' env vars a container lacks; one of the same
// name must be identical.
func mergeEnv(envs []corev1.EnvVar, presets []*settingsv1alpha1.PodPreset) ([]corev1.EnvVar, error) {
	byName := map[string]corev1.EnvVar{}
	for _, v := range envs {
		byName[v.Name] = v
	}
	merged := append([]corev1.EnvVar(nil), envs...)
	var errs []error
	for _, pp := range presets {
		for _, v := range pp.Spec.Env {
			found, ok := byName[v.Name]
			if !ok {
				byName[v.Name] = v
				merged = append(merged, *v.DeepCopy())
				continue
			}
			if !equality.Semantic.DeepEqual(found, v) {
				errs = append(errs, fmt.Errorf("merging env for %s has a conflict on %s: \n%#v\ndoes not match\n%#v\n in container", pp.Name, v.Name, v, found))
			}
		}
	}
	return merged, utilerrors.NewAggregate(errs)
}

// envFromKey identifies an envFrom source for merging.
type envFromKey struct{ prefix, configMap, secret string }

func keyOf(e corev1.EnvFromSource) envFromKey {
	k := envFromKey{prefix: e.Prefix}
	if e.ConfigMapRef != nil {
		k.configMap = e.ConfigMapRef.Name
	}
	if e.SecretRef != nil {
		k.secret = e.SecretRef.Name
	}
	return k
}

// mergeEnvFrom adds the presets' envFrom sources a container lacks.
func mergeEnvFrom(sources []corev1.EnvFromSource, presets []*settingsv1alpha1.PodPreset) ([]corev1.EnvFromSource, error) {
	byKey := map[envFromKey]corev1.EnvFromSource{}
	for _, s := range sources {
		byKey[keyOf(s)] = s
	}
	merged := append([]corev1.EnvFromSource(nil), sources...)
	var errs []error
	for _, pp := range presets {
		for _, s := range pp.Spec.EnvFrom {
			found, ok := byKey[keyOf(s)]
			if !ok {
				byKey[keyOf(s)] = s
				merged = append(merged, *s.DeepCopy())
				continue
			}
			if !equality.Semantic.DeepEqual(found, s) {
				errs = append(errs, fmt.Errorf("merging envFrom for %s has a conflict: \n%#v\ndoes not match\n%#v\n in container", pp.Name, s, found))
			}
		}
	}
	return merged, utilerrors.NewAggregate(errs)
}

// mergeVolumeMounts adds the presets' mounts a container lacks; a mount
// of the same name, or on the same path, must be identical.
func mergeVolumeMounts(mounts []corev1.VolumeMount, presets []*settingsv1alpha1.PodPreset) ([]corev1.VolumeMount, error) {
	byName := map[string]corev1.VolumeMount{}
	byPath := map[string]corev1.VolumeMount{}
	for _, m := range mounts {
		byName[m.Name] = m
		byPath[m.MountPath] = m
	}
	merged := append([]corev1.VolumeMount(nil), mounts...)
	var errs []error
	for _, pp := range presets {
		for _, m := range pp.Spec.VolumeMounts {
			if found, ok := byName[m.Name]; !ok {
				byName[m.Name] = m
				merged = append(merged, *m.DeepCopy())
			} else if !equality.Semantic.DeepEqual(found, m) {
				errs = append(errs, fmt.Errorf("merging volume mounts for %s has a conflict on %s: \n%#v\ndoes not match\n%#v\n in container", pp.Name, m.Name, m, found))
			}
			if found, ok := byPath[m.MountPath]; !ok {
				byPath[m.MountPath] = m
			} else if !equality.Semantic.DeepEqual(found, m) {
				errs = append(errs, fmt.Errorf("merging volume mounts for %s has a conflict on mount path %s: \n%#v\ndoes not match\n%#v\n in container", pp.Name, m.MountPath, m, found))
			}
		}
	}
	return merged, utilerrors.NewAggregate(errs)
}

// mergeVolumes adds the presets' volumes the pod lacks; one of the same
// name must be identical.
func mergeVolumes(volumes []corev1.Volume, presets []*settingsv1alpha1.PodPreset) ([]corev1.Volume, error) {
	byName := map[string]corev1.Volume{}
	for _, v := range volumes {
		byName[v.Name] = v
	}
	merged := append([]corev1.Volume(nil), volumes...)
	var errs []error
	for _, pp := range presets {
		for _, v := range pp.Spec.Volumes {
			found, ok := byName[v.Name]
			if !ok {
				byName[v.Name] = v
				merged = append(merged, *v.DeepCopy())
				continue
			}
			if !equality.Semantic.DeepEqual(found, v) {
				errs = append(errs, fmt.Errorf("merging volumes for %s has a conflict on %s: \n%#v\ndoes not match\n%#v\n in container", pp.Name, v.Name, v, found))
			}
		}
	}
	if err := utilerrors.NewAggregate(errs); err != nil {
		return nil, err
	}
	if len(merged) == 0 {
		return nil, nil
	}
	return merged, nil
}
