package meshconfig

// App probes through the sidecar (Istio's probe rewrite): injection
// points the kubelet's httpGet and tcpSocket probes of app containers at
// the sidecar's stats port, path AppHealthPath(container, kind), and
// hands the original probes to the sidecar in the AppProbersEnv
// variable, a JSON AppProbers; the sidecar performs them from inside the
// pod against 127.0.0.1 and answers with their result.
const (
	// AppProbersEnv is the sidecar's environment variable holding the
	// pod's original probes (Istio's name).
	AppProbersEnv = "ISTIO_KUBE_APP_PROBERS"
	// RewriteAppProbersAnnotation "false" on a pod keeps its probes as
	// they are.
	RewriteAppProbersAnnotation = "sidecar.istio.io/rewriteAppHTTPProbers"
	// AppHealthPrefix starts every rewritten probe's path.
	AppHealthPrefix = "/app-health/"
)

// Probe kinds, the last element of a rewritten probe's path.
const (
	LivenessProbe  = "livez"
	ReadinessProbe = "readyz"
	StartupProbe   = "startupz"
)

// AppHealthPath is the stats-port path of container's probe of kind
// (LivenessProbe, ReadinessProbe, StartupProbe).
func AppHealthPath(container, kind string) string {
	return AppHealthPrefix + container + "/" + kind
}

// AppProbers maps a rewritten path to the original probe (Istio's
// ISTIO_KUBE_APP_PROBERS shape).
type AppProbers map[string]AppProber

// AppProber is one original probe; exactly one of HTTPGet and TCPSocket
// is set. The JSON names are the Pod API's.
type AppProber struct {
	HTTPGet        *HTTPGetProbe   `json:"httpGet,omitempty"`
	TCPSocket      *TCPSocketProbe `json:"tcpSocket,omitempty"`
	TimeoutSeconds int32           `json:"timeoutSeconds,omitempty"`
}

// HTTPGetProbe is a Pod API HTTPGetAction with its port resolved to a
// number.
type HTTPGetProbe struct {
	Path        string       `json:"path,omitempty"`
	Port        int32        `json:"port"`
	Host        string       `json:"host,omitempty"`
	Scheme      string       `json:"scheme,omitempty"`
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is one header an HTTPGetProbe sends.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketProbe is a Pod API TCPSocketAction with its port resolved to
// a number.
type TCPSocketProbe struct {
	Port int32  `json:"port"`
	Host string `json:"host,omitempty"`
}
