package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Hand-written deep copies (what deepcopy-gen would generate).

// DeepCopyInto copies the receiver into out.
func (in *PodPreset) DeepCopyInto(out *PodPreset) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy copies the receiver into a new PodPreset.
func (in *PodPreset) DeepCopy() *PodPreset {
	if in == nil {
		return nil
	}
	out := new(PodPreset)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject copies the receiver into a new runtime.Object.
func (in *PodPreset) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies the receiver into out.
func (in *PodPresetSpec) DeepCopyInto(out *PodPresetSpec) {
	*out = *in
	in.Selector.DeepCopyInto(&out.Selector)
	if in.Env != nil {
		out.Env = make([]corev1.EnvVar, len(in.Env))
		for i := range in.Env {
			in.Env[i].DeepCopyInto(&out.Env[i])
		}
	}
	if in.EnvFrom != nil {
		out.EnvFrom = make([]corev1.EnvFromSource, len(in.EnvFrom))
		for i := range in.EnvFrom {
			in.EnvFrom[i].DeepCopyInto(&out.EnvFrom[i])
		}
	}
	if in.Volumes != nil {
		out.Volumes = make([]corev1.Volume, len(in.Volumes))
		for i := range in.Volumes {
			in.Volumes[i].DeepCopyInto(&out.Volumes[i])
		}
	}
	if in.VolumeMounts != nil {
		out.VolumeMounts = make([]corev1.VolumeMount, len(in.VolumeMounts))
		for i := range in.VolumeMounts {
			in.VolumeMounts[i].DeepCopyInto(&out.VolumeMounts[i])
		}
	}
}

// DeepCopy copies the receiver into a new PodPresetSpec.
func (in *PodPresetSpec) DeepCopy() *PodPresetSpec {
	if in == nil {
		return nil
	}
	out := new(PodPresetSpec)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies the receiver into out.
func (in *PodPresetList) DeepCopyInto(out *PodPresetList) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]PodPreset, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy copies the receiver into a new PodPresetList.
func (in *PodPresetList) DeepCopy() *PodPresetList {
	if in == nil {
		return nil
	}
	out := new(PodPresetList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject copies the receiver into a new runtime.Object.
func (in *PodPresetList) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}
