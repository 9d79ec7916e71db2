package validation

import (
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// validateVolumes checks the pod volumes and returns them by name for the
// volume mount checks. podMeta is the owning Pod's metadata (nil for
// templates); it names the PVCs generic ephemeral volumes will create.
func validateVolumes(volumes []corev1.Volume, podMeta *metav1.ObjectMeta, fldPath *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var allErrs field.ErrorList
	byName := make(map[string]corev1.VolumeSource, len(volumes))
	for i, vol := range volumes {
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		el := validateVolumeSource(&vol.VolumeSource, idxPath, vol.Name, podMeta)
		if vol.Name == "" {
			el = append(el, field.Required(namePath, ""))
		} else {
			el = append(el, dnsLabel(vol.Name, namePath)...)
		}
		if _, dup := byName[vol.Name]; dup {
			el = append(el, field.Duplicate(namePath, vol.Name))
		}
		if len(el) == 0 {
			byName[vol.Name] = vol.VolumeSource
		} else {
			allErrs = append(allErrs, el...)
		}
	}
	return byName, allErrs
}

// volumeSourceKinds lists the volume types a source sets, in JSON names.
func volumeSourceKinds(s *corev1.VolumeSource) []string {
	var kinds []string
	add := func(set bool, name string) {
		if set {
			kinds = append(kinds, name)
		}
	}
	add(s.HostPath != nil, "hostPath")
	add(s.EmptyDir != nil, "emptyDir")
	add(s.GCEPersistentDisk != nil, "gcePersistentDisk")
	add(s.AWSElasticBlockStore != nil, "awsElasticBlockStore")
	add(s.GitRepo != nil, "gitRepo")
	add(s.Secret != nil, "secret")
	add(s.NFS != nil, "nfs")
	add(s.ISCSI != nil, "iscsi")
	add(s.Glusterfs != nil, "glusterfs")
	add(s.PersistentVolumeClaim != nil, "persistentVolumeClaim")
	add(s.RBD != nil, "rbd")
	add(s.FlexVolume != nil, "flexVolume")
	add(s.Cinder != nil, "cinder")
	add(s.CephFS != nil, "cephfs")
	add(s.Flocker != nil, "flocker")
	add(s.DownwardAPI != nil, "downwardAPI")
	add(s.FC != nil, "fc")
	add(s.AzureFile != nil, "azureFile")
	add(s.ConfigMap != nil, "configMap")
	add(s.VsphereVolume != nil, "vsphereVolume")
	add(s.Quobyte != nil, "quobyte")
	add(s.AzureDisk != nil, "azureDisk")
	add(s.PhotonPersistentDisk != nil, "photonPersistentDisk")
	add(s.Projected != nil, "projected")
	add(s.PortworxVolume != nil, "portworxVolume")
	add(s.ScaleIO != nil, "scaleIO")
	add(s.StorageOS != nil, "storageos")
	add(s.CSI != nil, "csi")
	add(s.Ephemeral != nil, "ephemeral")
	add(s.Image != nil, "image")
	return kinds
}

func validateVolumeSource(s *corev1.VolumeSource, fldPath *field.Path, volName string, podMeta *metav1.ObjectMeta) field.ErrorList {
	var allErrs field.ErrorList
	kinds := volumeSourceKinds(s)
	switch {
	case len(kinds) == 0:
		return field.ErrorList{field.Required(fldPath, "must specify a volume type")}
	case len(kinds) > 1:
		for _, k := range kinds[1:] {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child(k), "may not specify more than 1 volume type"))
		}
		return allErrs
	}
	switch {
	case s.EmptyDir != nil:
		if s.EmptyDir.SizeLimit != nil && s.EmptyDir.SizeLimit.Sign() < 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("emptyDir").Child("sizeLimit"), "SizeLimit field must be a valid resource quantity"))
		}
	case s.HostPath != nil:
		p := fldPath.Child("hostPath")
		if s.HostPath.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
		} else {
			allErrs = append(allErrs, noBacksteps(s.HostPath.Path, p.Child("path"))...)
		}
		if t := s.HostPath.Type; t != nil {
			allErrs = append(allErrs, validateHostPathType(*t, p.Child("type"))...)
		}
	case s.Secret != nil:
		p := fldPath.Child("secret")
		if s.Secret.SecretName == "" {
			allErrs = append(allErrs, field.Required(p.Child("secretName"), ""))
		}
		allErrs = append(allErrs, fileMode(s.Secret.DefaultMode, p.Child("defaultMode"))...)
		allErrs = append(allErrs, validateKeyToPaths(s.Secret.Items, p.Child("items"))...)
	case s.ConfigMap != nil:
		p := fldPath.Child("configMap")
		if s.ConfigMap.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		allErrs = append(allErrs, fileMode(s.ConfigMap.DefaultMode, p.Child("defaultMode"))...)
		allErrs = append(allErrs, validateKeyToPaths(s.ConfigMap.Items, p.Child("items"))...)
	case s.PersistentVolumeClaim != nil:
		if s.PersistentVolumeClaim.ClaimName == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("persistentVolumeClaim", "claimName"), ""))
		}
	case s.DownwardAPI != nil:
		p := fldPath.Child("downwardAPI")
		allErrs = append(allErrs, fileMode(s.DownwardAPI.DefaultMode, p.Child("defaultMode"))...)
		for _, f := range s.DownwardAPI.Items {
			allErrs = append(allErrs, validateDownwardAPIFile(&f, p)...)
		}
	case s.Projected != nil:
		allErrs = append(allErrs, validateProjected(s.Projected, fldPath.Child("projected"))...)
	case s.NFS != nil:
		p := fldPath.Child("nfs")
		if s.NFS.Server == "" {
			allErrs = append(allErrs, field.Required(p.Child("server"), ""))
		}
		if s.NFS.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
		}
		if !path.IsAbs(s.NFS.Path) {
			allErrs = append(allErrs, field.Invalid(p.Child("path"), s.NFS.Path, "must be an absolute path"))
		}
	case s.CSI != nil:
		p := fldPath.Child("csi")
		if s.CSI.Driver == "" {
			allErrs = append(allErrs, field.Required(p.Child("driver"), ""))
		} else {
			if len(s.CSI.Driver) > 63 {
				allErrs = append(allErrs, field.TooLong(p.Child("driver"), "", 63))
			}
			allErrs = append(allErrs, dnsSubdomain(strings.ToLower(s.CSI.Driver), p.Child("driver"))...)
		}
	case s.Ephemeral != nil:
		p := fldPath.Child("ephemeral")
		if s.Ephemeral.VolumeClaimTemplate == nil {
			allErrs = append(allErrs, field.Required(p.Child("volumeClaimTemplate"), ""))
		} else {
			allErrs = append(allErrs, validatePVCTemplate(s.Ephemeral.VolumeClaimTemplate, p.Child("volumeClaimTemplate"))...)
			if podMeta != nil && podMeta.Name != "" && volName != "" {
				pvcName := podMeta.Name + "-" + volName
				for _, msg := range nameIsDNSSubdomain(pvcName, false) {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), volName, "PVC name \""+pvcName+"\": "+msg))
				}
			}
		}
	case s.Image != nil:
		p := fldPath.Child("image")
		if podMeta != nil && s.Image.Reference == "" {
			allErrs = append(allErrs, field.Required(p.Child("reference"), ""))
		}
		allErrs = append(allErrs, pullPolicy(s.Image.PullPolicy, p.Child("pullPolicy"))...)
	case s.GitRepo != nil:
		p := fldPath.Child("gitRepo")
		if s.GitRepo.Repository == "" {
			allErrs = append(allErrs, field.Required(p.Child("repository"), ""))
		}
		allErrs = append(allErrs, localDescendingPath(s.GitRepo.Directory, p.Child("directory"))...)
	}
	// The remaining in-tree plugins are deprecated; upstream checks little
	// beyond their required identifiers, which their drivers report anyway.
	return allErrs
}

var supportedHostPathTypes = []corev1.HostPathType{
	corev1.HostPathBlockDev, corev1.HostPathCharDev, corev1.HostPathDirectory, corev1.HostPathDirectoryOrCreate,
	corev1.HostPathFile, corev1.HostPathFileOrCreate, corev1.HostPathSocket, corev1.HostPathUnset,
}

func validateHostPathType(t corev1.HostPathType, fldPath *field.Path) field.ErrorList {
	for _, ok := range supportedHostPathTypes {
		if t == ok {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(fldPath, t, supportedHostPathTypes)}
}

func fileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, kp := range items {
		p := fldPath.Index(i)
		if kp.Key == "" {
			allErrs = append(allErrs, field.Required(p.Child("key"), ""))
		}
		if kp.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
		}
		allErrs = append(allErrs, localNonReservedPath(kp.Path, p.Child("path"))...)
		allErrs = append(allErrs, fileMode(kp.Mode, p.Child("mode"))...)
	}
	return allErrs
}

var downwardAPIVolumeFields = map[string]bool{
	"metadata.name": true, "metadata.namespace": true, "metadata.labels": true,
	"metadata.annotations": true, "metadata.uid": true,
}

func validateDownwardAPIFile(f *corev1.DownwardAPIVolumeFile, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if f.Path == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
	}
	allErrs = append(allErrs, localNonReservedPath(f.Path, fldPath.Child("path"))...)
	switch {
	case f.FieldRef != nil:
		allErrs = append(allErrs, validateFieldSelector(f.FieldRef, downwardAPIVolumeFields, fldPath.Child("fieldRef"))...)
		if f.ResourceFieldRef != nil {
			allErrs = append(allErrs, field.Invalid(fldPath, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		}
	case f.ResourceFieldRef != nil:
		allErrs = append(allErrs, validateResourceFieldSelector(f.ResourceFieldRef, true, fldPath.Child("resourceFieldRef"))...)
	default:
		allErrs = append(allErrs, field.Required(fldPath, "one of fieldRef and resourceFieldRef is required"))
	}
	return append(allErrs, fileMode(f.Mode, fldPath.Child("mode"))...)
}

func validateProjected(p *corev1.ProjectedVolumeSource, fldPath *field.Path) field.ErrorList {
	allErrs := fileMode(p.DefaultMode, fldPath.Child("defaultMode"))
	paths := map[string]bool{}
	addPath := func(pth string, bad any) {
		if pth == "" {
			return
		}
		if paths[pth] {
			allErrs = append(allErrs, field.Invalid(fldPath, bad, "conflicting duplicate paths"))
		}
		paths[pth] = true
	}
	for i, src := range p.Sources {
		srcPath := fldPath.Child("sources").Index(i)
		n := 0
		if s := src.Secret; s != nil {
			n++
			if s.Name == "" {
				allErrs = append(allErrs, field.Required(srcPath.Child("secret", "name"), ""))
			}
			allErrs = append(allErrs, validateKeyToPaths(s.Items, srcPath.Child("secret", "items"))...)
			for _, kp := range s.Items {
				addPath(kp.Path, s.Name)
			}
		}
		if s := src.ConfigMap; s != nil {
			n++
			if s.Name == "" {
				allErrs = append(allErrs, field.Required(srcPath.Child("configMap", "name"), ""))
			}
			allErrs = append(allErrs, validateKeyToPaths(s.Items, srcPath.Child("configMap", "items"))...)
			for _, kp := range s.Items {
				addPath(kp.Path, s.Name)
			}
		}
		if s := src.DownwardAPI; s != nil {
			n++
			for _, f := range s.Items {
				allErrs = append(allErrs, validateDownwardAPIFile(&f, srcPath.Child("downwardAPI"))...)
				addPath(f.Path, f.Path)
			}
		}
		if s := src.ServiceAccountToken; s != nil {
			n++
			tp := srcPath.Child("serviceAccountToken")
			if s.ExpirationSeconds != nil {
				if *s.ExpirationSeconds < 10*60 {
					allErrs = append(allErrs, field.Invalid(tp.Child("expirationSeconds"), *s.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
				}
				if *s.ExpirationSeconds > 1<<32 {
					allErrs = append(allErrs, field.Invalid(tp.Child("expirationSeconds"), *s.ExpirationSeconds, "may not specify a duration larger than 2^32 seconds"))
				}
			}
			if s.Path == "" {
				allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
			} else {
				allErrs = append(allErrs, localNonReservedPath(s.Path, fldPath.Child("path"))...)
			}
			addPath(s.Path, s.Path)
		}
		if s := src.ClusterTrustBundle; s != nil {
			n++
			cp := srcPath.Child("clusterTrustBundle")
			if s.Path == "" {
				allErrs = append(allErrs, field.Required(cp.Child("path"), ""))
			}
			allErrs = append(allErrs, localNonReservedPath(s.Path, cp.Child("path"))...)
			if s.Name != nil && s.SignerName != nil {
				allErrs = append(allErrs, field.Invalid(cp, s, "only one of name and signerName may be used"))
			} else if s.Name == nil && s.SignerName == nil {
				allErrs = append(allErrs, field.Required(cp, "either name or signerName must be specified"))
			}
			if s.LabelSelector != nil {
				allErrs = append(allErrs, metav1validation.ValidateLabelSelector(s.LabelSelector, metav1validation.LabelSelectorValidationOptions{}, cp.Child("labelSelector"))...)
			}
			addPath(s.Path, s.Path)
		}
		if s := src.PodCertificate; s != nil {
			n++
			addPath(s.CredentialBundlePath, s.CredentialBundlePath)
		}
		if n > 1 {
			allErrs = append(allErrs, field.Forbidden(srcPath, "may not specify more than 1 volume type per source"))
		}
	}
	return allErrs
}

// validatePVCTemplate checks the claim template of a generic ephemeral
// volume or a StatefulSet: only labels and annotations may be set in its
// metadata, and the spec needs access modes and a storage request.
func validatePVCTemplate(t *corev1.PersistentVolumeClaimTemplate, fldPath *field.Path) field.ErrorList {
	allErrs := validateTemplateObjectMeta(&t.ObjectMeta, fldPath.Child("metadata"))
	return append(allErrs, validatePVCSpec(&t.Spec, fldPath.Child("spec"))...)
}

// validateTemplateObjectMeta allows labels and annotations only.
func validateTemplateObjectMeta(meta *metav1.ObjectMeta, fldPath *field.Path) field.ErrorList {
	allErrs := metav1validation.ValidateLabels(meta.Labels, fldPath.Child("labels"))
	allErrs = append(allErrs, validateAnnotations(meta.Annotations, fldPath.Child("annotations"))...)
	rest := meta.DeepCopy()
	rest.Labels, rest.Annotations = nil, nil
	if rest.Name != "" {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("name"), "cannot be set"))
	}
	if rest.Namespace != "" {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("namespace"), "cannot be set"))
	}
	if rest.GenerateName != "" {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("generateName"), "cannot be set"))
	}
	return allErrs
}

var supportedAccessModes = []corev1.PersistentVolumeAccessMode{
	corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod,
}

func validatePVCSpec(spec *corev1.PersistentVolumeClaimSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.AccessModes) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("accessModes"), "at least 1 access mode is required"))
	}
	rwop, other := false, false
	for _, mode := range spec.AccessModes {
		known := false
		for _, ok := range supportedAccessModes {
			known = known || mode == ok
		}
		if !known {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("accessModes"), mode, supportedAccessModes))
			continue
		}
		if mode == corev1.ReadWriteOncePod {
			rwop = true
		} else {
			other = true
		}
	}
	if rwop && other {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("accessModes"), "may not use ReadWriteOncePod with other access modes"))
	}
	if spec.Selector != nil {
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
	}
	storagePath := fldPath.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		allErrs = append(allErrs, field.Required(storagePath, ""))
	} else if q.Sign() <= 0 {
		allErrs = append(allErrs, field.Invalid(storagePath, q.String(), "must be greater than zero"))
	}
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		allErrs = append(allErrs, nameErrors(nameIsDNSSubdomain, *spec.StorageClassName, fldPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil {
		modes := []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem}
		if *spec.VolumeMode != modes[0] && *spec.VolumeMode != modes[1] {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("volumeMode"), *spec.VolumeMode, modes))
		}
	}
	return allErrs
}

// localDescendingPath requires a relative path without ".." elements.
func localDescendingPath(p string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if path.IsAbs(p) {
		allErrs = append(allErrs, field.Invalid(fldPath, p, "must be a relative path"))
	}
	return append(allErrs, noBacksteps(p, fldPath)...)
}

// localNonReservedPath also refuses paths starting with "..".
func localNonReservedPath(p string, fldPath *field.Path) field.ErrorList {
	allErrs := localDescendingPath(p, fldPath)
	if strings.HasPrefix(p, "..") && !strings.HasPrefix(p, "../") {
		allErrs = append(allErrs, field.Invalid(fldPath, p, "must not start with '..'"))
	}
	return allErrs
}

func noBacksteps(p string, fldPath *field.Path) field.ErrorList {
	for _, item := range strings.Split(filepath.ToSlash(p), "/") {
		if item == ".." {
			return field.ErrorList{field.Invalid(fldPath, p, "must not contain '..'")}
		}
	}
	return nil
}
