package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// maxBodyBytes is the request body limit, as kube-apiserver's default.
const maxBodyBytes = 3 << 20

// output is a negotiated response form.
type output struct {
	yaml  bool
	proto bool
	// as is "", "Table", "PartialObjectMetadata" or "PartialObjectMetadataList".
	as string
	// tableVersion is the meta.k8s.io version of a Table (v1 or v1beta1).
	tableVersion string
}

// negotiate picks the response form from the Accept header. It fails with
// 406 when only unsupported forms are acceptable.
func negotiate(r *http.Request) (output, error) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return output{}, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		var out output
		switch mt {
		case "application/json", "*/*", "application/*":
		case "application/yaml":
			out.yaml = true
		case protoType:
			if params["as"] != "" {
				continue // tables and metadata-only views are JSON only
			}
			out.proto = true
		default:
			continue
		}
		if as := params["as"]; as != "" {
			if params["g"] != "meta.k8s.io" {
				continue
			}
			switch as {
			case "Table":
				if v := params["v"]; v != "v1" && v != "v1beta1" {
					continue
				}
				out.tableVersion = params["v"]
			case "PartialObjectMetadata", "PartialObjectMetadataList":
				if v := params["v"]; v != "v1" && v != "v1beta1" {
					continue
				}
			default:
				continue
			}
			out.as = as
		}
		return out, nil
	}
	return output{}, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schemaGR(), "",
		fmt.Sprintf("only the following media types are accepted: application/json, application/yaml, application/json;as=Table;g=meta.k8s.io;v=v1 (got %q)", accept), 0, false)
}

const protoType = "application/vnd.kubernetes.protobuf"

var (
	protoSerializer = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	protoRaw        = protobuf.NewRawSerializer(scheme.Scheme, scheme.Scheme)
)

// writeObject encodes obj in the negotiated form with the given status.
func writeObject(w http.ResponseWriter, code int, out output, obj any) {
	if ro, ok := obj.(runtime.Object); ok && out.proto {
		var buf bytes.Buffer
		if err := protoSerializer.Encode(ro, &buf); err == nil {
			w.Header().Set("Content-Type", protoType)
			w.WriteHeader(code)
			w.Write(buf.Bytes())
			return
		}
	}
	data, err := json.Marshal(obj)
	if err != nil {
		writeError(w, apierrors.NewInternalError(fmt.Errorf("encode response: %w", err)))
		return
	}
	ctype := "application/json"
	if out.yaml {
		if data, err = yaml.JSONToYAML(data); err != nil {
			writeError(w, apierrors.NewInternalError(err))
			return
		}
		ctype = "application/yaml"
	} else {
		data = append(data, '\n')
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(code)
	w.Write(data)
}

// readBody reads a request body within the size limit and converts YAML
// to JSON. Protobuf bodies come back as they are, with proto set.
func readBody(r *http.Request) (data []byte, proto bool, err error) {
	data, err = readJSONBody(r, true)
	if errors.Is(err, errProtoBody) {
		return data, true, nil
	}
	return data, false, err
}

var errProtoBody = errors.New("protobuf body")

var errEmptyBody = apierrors.NewBadRequest("the body of the request is empty")

func isEmptyBody(err error) bool { return err == errEmptyBody }

func readJSONBody(r *http.Request, allowProto bool) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBodyBytes))
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "", "application/json", "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json":
	case protoType:
		if allowProto {
			return data, errProtoBody
		}
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schemaGR(), "", "this request takes JSON or YAML, not protobuf", 0, false)
	case "application/yaml", "application/apply-patch+yaml":
		if data, err = yaml.YAMLToJSON(data); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: %v", err))
		}
	default:
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schemaGR(), "",
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got %q)", mt), 0, false)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errEmptyBody
	}
	return data, nil
}

// fieldValidation is the query parameter's three modes.
type fieldValidation int

const (
	validationWarn fieldValidation = iota
	validationIgnore
	validationStrict
)

func parseFieldValidation(r *http.Request) (fieldValidation, error) {
	switch v := r.URL.Query().Get("fieldValidation"); v {
	case "", "Warn":
		return validationWarn, nil
	case "Ignore":
		return validationIgnore, nil
	case "Strict":
		return validationStrict, nil
	default:
		return 0, apierrors.NewBadRequest(fmt.Sprintf("fieldValidation %q is invalid: must be one of Ignore, Warn, Strict", v))
	}
}

// decodeInto decodes JSON data into obj, applying the field validation
// mode: unknown and duplicate fields fail the request (Strict), come back
// as warnings (Warn), or are dropped (Ignore).
func decodeInto(data []byte, obj runtime.Object, k *kind, mode fieldValidation) (warnings []string, err error) {
	if !json.Valid(data) {
		var v any
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is not valid JSON: %v", json.Unmarshal(data, &v)))
	}
	var msgs []string
	if k.preDecode != nil {
		var err error
		if data, msgs, err = k.preDecode(k.gk, data); err != nil {
			if _, ok := err.(apierrors.APIStatus); ok {
				return nil, err
			}
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", k.Kind, k.Version, k.Kind, err))
		}
	}
	strictErrs, err := sigsjson.UnmarshalStrict(data, obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", k.Kind, k.Version, k.Kind, err))
	}
	for _, e := range strictErrs {
		msgs = append(msgs, e.Error())
	}
	if len(msgs) == 0 || mode == validationIgnore {
		return nil, nil
	}
	if mode == validationStrict {
		return nil, apierrors.NewBadRequest("strict decoding error: " + strings.Join(msgs, ", "))
	}
	return msgs, nil
}

// addWarnings sets Warning headers the way kube-apiserver does.
func addWarnings(w http.ResponseWriter, msgs []string) {
	for _, m := range msgs {
		w.Header().Add("Warning", fmt.Sprintf("299 - %q", m))
	}
}
