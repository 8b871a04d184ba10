package infra_test

import (
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/natter-im/natter/jetstream/streams"
)

const (
	k8sDir       = "k8s"
	namespace    = "natter"
	commonConfig = "natter-common"
	secretName   = "natter-secrets"
)

// Roles that need MongoDB (docs/config.md: --mongo-uri is "required for
// worker with the persist or conversations role").
var storeRoles = []string{"persist", "conversations"}

// k8sFiles returns the manifest files of infra/k8s: every YAML file except
// the Helm values and the kustomization.
func k8sFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, f := range files {
		switch filepath.Base(f) {
		case "nats-values.yaml", "kustomization.yaml":
		default:
			out = append(out, f)
		}
	}
	return out
}

// workload is a pod template with what the tests derive from it.
type workload struct {
	obj     object
	tmpl    podTemplate
	c       container
	command string   // edge, worker or streams apply
	roles   []string // worker roles
}

func workloads(tb testing.TB, objs []object) []workload {
	tb.Helper()
	var out []workload
	for _, o := range objs {
		var tmpl podTemplate
		switch o.Kind {
		case "Deployment":
			var d deployment
			o.decode(tb, &d)
			tmpl = d.Spec.Template
		case "Job":
			var j job
			o.decode(tb, &j)
			tmpl = j.Spec.Template
		default:
			continue
		}
		if len(tmpl.Spec.Containers) != 1 {
			tb.Fatalf("%v: want one container, have %d", o, len(tmpl.Spec.Containers))
		}
		w := workload{obj: o, tmpl: tmpl, c: tmpl.Spec.Containers[0]}
		args := w.c.Args
		switch {
		case len(args) > 0 && (args[0] == cmdEdge || args[0] == cmdWorker):
			w.command = args[0]
		case len(args) > 1 && args[0] == "streams" && args[1] == "apply":
			w.command = cmdStream
		default:
			tb.Fatalf("%v: args %v run no natter command the manifests know", o, args)
		}
		if w.command == cmdWorker {
			roles, _ := w.c.env("NATTER_ROLES")
			if i := slices.Index(args, "--roles"); i >= 0 && i+1 < len(args) {
				roles = args[i+1]
			}
			for _, r := range strings.Split(roles, ",") {
				if r = strings.TrimSpace(r); r != "" {
					w.roles = append(w.roles, r)
				}
			}
		}
		out = append(out, w)
	}
	return out
}

// TestK8sManifests parses every manifest of infra/k8s (multi-document YAML)
// and checks the objects against each other and against the binary: kinds
// and names, one Deployment per worker role, selectors matching labels,
// probes on /healthz and /readyz at the ports the processes listen on,
// resources, shutdown budgets, the NATTER_* variables (documented, read by
// that command, shared ones in the ConfigMap), the streams-apply Job, the
// autoscalers (HPA for edges, KEDA on each role's JetStream consumer), the
// Services, PDBs, Ingress, ServiceMonitors and alert rules.
func TestK8sManifests(t *testing.T) {
	t.Parallel()
	objs := loadManifests(t, k8sFiles(t)...)
	ws := workloads(t, objs)
	env := documentedEnv(t)
	roles := workerRoles(t)
	metrics := metricNames(t)

	t.Run("objects", func(t *testing.T) {
		seen := make(map[string]bool)
		for _, o := range objs {
			key := o.Kind + "/" + o.Metadata.Name
			if seen[key] {
				t.Errorf("%v: defined twice", o)
			}
			seen[key] = true
			if o.Kind != "Namespace" && o.Metadata.Namespace != namespace {
				t.Errorf("%v: namespace %q, want %q", o, o.Metadata.Namespace, namespace)
			}
		}
		want := []string{"Namespace/natter", "ConfigMap/" + commonConfig, "Secret/" + secretName,
			"Deployment/natter-edge", "Service/natter-edge", "PodDisruptionBudget/natter-edge", "HorizontalPodAutoscaler/natter-edge",
			"Service/natter-workers", "Job/natter-streams-apply", "ServiceMonitor/natter-edge", "ServiceMonitor/natter-workers",
			"PrometheusRule/natter", "Ingress/natter-edge"}
		for _, r := range roles {
			want = append(want, "Deployment/natter-"+r, "PodDisruptionBudget/natter-"+r, "ScaledObject/natter-"+r)
		}
		for _, k := range want {
			if !seen[k] {
				t.Errorf("infra/k8s has no %s", k)
			}
		}
	})

	t.Run("kustomization", func(t *testing.T) {
		var k struct {
			Resources []string `yaml:"resources"`
			Images    []struct {
				Name   string `yaml:"name"`
				NewTag string `yaml:"newTag"`
			} `yaml:"images"`
		}
		if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(k8sDir, "kustomization.yaml"))), &k); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, f := range k8sFiles(t) {
			if b := filepath.Base(f); b != "secret.example.yaml" {
				want = append(want, b)
			}
		}
		got := slices.Clone(k.Resources)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("kustomization.yaml resources %v, want every manifest but secret.example.yaml: %v", got, want)
		}
		for _, w := range ws {
			name, tag, _ := strings.Cut(w.c.Image, ":")
			if len(k.Images) != 1 || k.Images[0].Name != name || k.Images[0].NewTag != tag {
				t.Errorf("%v: image %s does not match kustomization images %+v", w.obj, w.c.Image, k.Images)
			}
		}
	})

	t.Run("workloads", func(t *testing.T) {
		var image string
		for _, w := range ws {
			c := w.c
			if image == "" {
				image = c.Image
			}
			if c.Image != image || !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%v: image %q; want one pinned image for every natter container (%s)", w.obj, c.Image, image)
			}
			for _, r := range []string{"cpu", "memory"} {
				req, err1 := quantity(c.Resources.Requests[r])
				lim, err2 := quantity(c.Resources.Limits[r])
				if err1 != nil || err2 != nil || req <= 0 || lim < req {
					t.Errorf("%v: %s request %q, limit %q; want both, request <= limit", w.obj, r, c.Resources.Requests[r], c.Resources.Limits[r])
				}
			}
			if !slices.ContainsFunc(c.EnvFrom, func(e envFromSource) bool {
				return e.ConfigMapRef != nil && e.ConfigMapRef.Name == commonConfig
			}) {
				t.Errorf("%v: does not read the shared ConfigMap %s", w.obj, commonConfig)
			}
			if w.command == cmdStream {
				continue
			}
			checkServing(t, w)
		}
	})

	t.Run("deployments", func(t *testing.T) {
		scaled := make(map[string]bool)
		for _, o := range ofKind(objs, "HorizontalPodAutoscaler") {
			var h hpa
			o.decode(t, &h)
			scaled[h.Spec.ScaleTargetRef.Name] = true
		}
		for _, o := range ofKind(objs, "ScaledObject") {
			var s scaledObject
			o.decode(t, &s)
			scaled[s.Spec.ScaleTargetRef.Name] = true
		}
		for _, o := range ofKind(objs, "Deployment") {
			var d deployment
			o.decode(t, &d)
			if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
				t.Errorf("%v: selector %v does not match its pod labels %v", o, d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
			}
			if !scaled[o.Metadata.Name] {
				t.Errorf("%v: no HPA or ScaledObject scales it", o)
			} else if d.Spec.Replicas != nil {
				t.Errorf("%v: sets replicas although an autoscaler owns the count (kubectl apply would reset it)", o)
			}
		}
		byRole := make(map[string][]string)
		for _, w := range ws {
			if w.command != cmdWorker {
				continue
			}
			if len(w.roles) == 0 {
				t.Errorf("%v: a worker with no NATTER_ROLES or --roles runs every role", w.obj)
			}
			for _, r := range w.roles {
				if !slices.Contains(roles, r) {
					t.Errorf("%v: role %q is not one the binary knows %v (it would exit at start)", w.obj, r, roles)
				}
				byRole[r] = append(byRole[r], w.obj.Metadata.Name)
			}
			_, hasMongo := w.c.env("NATTER_MONGO_URI")
			needs := slices.ContainsFunc(w.roles, func(r string) bool { return slices.Contains(storeRoles, r) })
			if needs != hasMongo {
				t.Errorf("%v: roles %v with NATTER_MONGO_URI set %v; a store is needed exactly for %v", w.obj, w.roles, hasMongo, storeRoles)
			}
		}
		for _, r := range roles {
			if len(byRole[r]) != 1 || byRole[r][0] != "natter-"+r {
				t.Errorf("role %s runs in %v; want exactly one Deployment, natter-%s, so each role scales on its own", r, byRole[r], r)
			}
		}
	})

	t.Run("env", func(t *testing.T) {
		var cm configMap
		find(t, objs, "ConfigMap", commonConfig).decode(t, &cm)
		var sec secret
		find(t, objs, "Secret", secretName).decode(t, &sec)
		for k, v := range cm.Data {
			cmds, ok := env[k]
			switch {
			case !ok:
				t.Errorf("ConfigMap %s: %s is not in docs/config.md", commonConfig, k)
			case !containsAll(cmds, cmdEdge, cmdWorker, cmdStream):
				t.Errorf("ConfigMap %s: %s is read by %v only; the shared ConfigMap holds settings of every command", commonConfig, k, cmds)
			}
			checkValue(t, "ConfigMap "+commonConfig, k, v)
		}
		if cm.Data["NATTER_NATS_URL"] == "" || cm.Data["NATTER_REPLICAS"] != "3" {
			t.Errorf("ConfigMap %s: NATTER_NATS_URL %q, NATTER_REPLICAS %q; want a URL and 3", commonConfig, cm.Data["NATTER_NATS_URL"], cm.Data["NATTER_REPLICAS"])
		}
		for _, w := range ws {
			for _, e := range w.c.Env {
				if !strings.HasPrefix(e.Name, "NATTER_") {
					continue
				}
				cmds, ok := env[e.Name]
				switch {
				case !ok:
					t.Errorf("%v: %s is not in docs/config.md", w.obj, e.Name)
				case cmds != nil && !slices.Contains(cmds, w.command):
					t.Errorf("%v: %s is read by %v, not by natter %s", w.obj, e.Name, cmds, w.command)
				}
				if _, dup := cm.Data[e.Name]; dup {
					t.Errorf("%v: %s set both in env and in ConfigMap %s", w.obj, e.Name, commonConfig)
				}
				if e.ValueFrom == nil {
					checkValue(t, w.obj.String(), e.Name, e.Value)
				} else if ref := e.ValueFrom.SecretKeyRef; ref != nil {
					if ref.Name != secretName || sec.StringData[ref.Key] == "" {
						t.Errorf("%v: %s from secret %s key %q, which secret.example.yaml does not have", w.obj, e.Name, ref.Name, ref.Key)
					}
				}
			}
			for _, v := range w.tmpl.Spec.Volumes {
				if v.Secret == nil {
					continue
				}
				for _, it := range v.Secret.Items {
					if v.Secret.SecretName != secretName || sec.StringData[it.Key] == "" {
						t.Errorf("%v: volume %s mounts key %q of secret %s, which secret.example.yaml does not have", w.obj, v.Name, it.Key, v.Secret.SecretName)
					}
				}
			}
		}
	})

	t.Run("streams-job", func(t *testing.T) {
		var cm configMap
		find(t, objs, "ConfigMap", commonConfig).decode(t, &cm)
		var j job
		find(t, objs, "Job", "natter-streams-apply").decode(t, &j)
		args := j.Spec.Template.Spec.Containers[0].Args
		i := slices.Index(args, "--replicas")
		if !slices.Equal(args[:2], []string{"streams", "apply"}) || i < 0 || i+1 >= len(args) || args[i+1] != cm.Data["NATTER_REPLICAS"] {
			t.Errorf("Job natter-streams-apply: args %v; want streams apply --replicas %s (the ConfigMap's NATTER_REPLICAS)", args, cm.Data["NATTER_REPLICAS"])
		}
		if p := j.Spec.Template.Spec.RestartPolicy; p != "OnFailure" && p != "Never" {
			t.Errorf("Job natter-streams-apply: restartPolicy %q", p)
		}
	})

	t.Run("autoscaling", func(t *testing.T) {
		var h hpa
		find(t, objs, "HorizontalPodAutoscaler", "natter-edge").decode(t, &h)
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != "natter-edge" || h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas <= h.Spec.MinReplicas {
			t.Errorf("HPA natter-edge: %+v", h.Spec)
		}
		var cpu, conns bool
		for _, m := range h.Spec.Metrics {
			cpu = cpu || (m.Resource != nil && m.Resource.Name == "cpu")
			if m.Pods != nil {
				conns = conns || m.Pods.Metric.Name == "natter_edge_connections"
				if !metrics[m.Pods.Metric.Name] {
					t.Errorf("HPA natter-edge: metric %s is not served by natter", m.Pods.Metric.Name)
				}
			}
		}
		if !cpu || !conns {
			t.Errorf("HPA natter-edge: want CPU and natter_edge_connections metrics, cpu %v, connections %v", cpu, conns)
		}

		values := natsValues(t)
		consumers := definedConsumers()
		for _, r := range roles {
			var s scaledObject
			o := find(t, objs, "ScaledObject", "natter-"+r)
			o.decode(t, &s)
			if s.Spec.ScaleTargetRef.Name != "natter-"+r {
				t.Errorf("%v: scales %q", o, s.Spec.ScaleTargetRef.Name)
			}
			if s.Spec.MinReplicaCount == nil || *s.Spec.MinReplicaCount < 1 || s.Spec.MaxReplicaCount < *s.Spec.MinReplicaCount {
				t.Errorf("%v: replicas %v..%d; want a minimum of at least 1 (never zero: see keda.yaml)", o, s.Spec.MinReplicaCount, s.Spec.MaxReplicaCount)
			}
			if len(s.Spec.Triggers) == 0 {
				t.Errorf("%v: no triggers", o)
			}
			// A role with a consumer of its name scales on that consumer's lag.
			consumer := strings.ToUpper(r)
			stream, ok := consumers[consumer]
			if !ok {
				continue
			}
			i := slices.IndexFunc(s.Spec.Triggers, func(tr trigger) bool { return tr.Type == "nats-jetstream" })
			if i < 0 {
				t.Errorf("%v: role %s has consumer %s but no nats-jetstream trigger", o, r, consumer)
				continue
			}
			md := s.Spec.Triggers[i].Metadata
			if md["stream"] != stream || md["consumer"] != consumer || md["account"] == "" {
				t.Errorf("%v: trigger %v; want stream %s, consumer %s, an account", o, md, stream, consumer)
			}
			if n, err := strconv.Atoi(md["lagThreshold"]); err != nil || n <= 0 {
				t.Errorf("%v: lagThreshold %q", o, md["lagThreshold"])
			}
			host, port, err := net.SplitHostPort(md["natsServerMonitoringEndpoint"])
			if err != nil || !strings.HasPrefix(host, "nats-headless.nats.") || port != strconv.Itoa(values.Config.Monitor.Port) {
				t.Errorf("%v: natsServerMonitoringEndpoint %q; want the Helm release's headless Service on its monitor port %d", o, md["natsServerMonitoringEndpoint"], values.Config.Monitor.Port)
			}
		}
	})

	t.Run("services", func(t *testing.T) {
		checkServices(t, objs, ws)
	})

	t.Run("monitoring", func(t *testing.T) {
		checkMonitoring(t, objs, metrics, roles)
	})
}

// definedConsumers maps every durable consumer natter defines to its stream.
func definedConsumers() map[string]string {
	out := make(map[string]string)
	for stream, cs := range streams.Define(streams.Config{}).Consumers {
		for _, c := range cs {
			out[c.Durable] = stream
		}
	}
	return out
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// checkValue checks a literal NATTER_* value has the type the binary parses.
func checkValue(t *testing.T, where, name, v string) {
	t.Helper()
	var err error
	switch name {
	case "NATTER_REPLICAS", "NATTER_HOT_TIER", "NATTER_MAX_DELIVER", "NATTER_MAX_BODY", "NATTER_BURST", "NATTER_SEND_QUEUE":
		_, err = strconv.Atoi(v)
	case "NATTER_DEDUP_WINDOW", "NATTER_IDEM_TTL", "NATTER_ACK_WAIT", "NATTER_SHUTDOWN_TIMEOUT", "NATTER_PING_INTERVAL",
		"NATTER_AUTH_TIMEOUT", "NATTER_LAME_DUCK", "NATTER_SYNC_INTERVAL":
		_, err = time.ParseDuration(v)
	case "NATTER_HTTP_ADDR", "NATTER_ADMIN_ADDR":
		_, _, err = net.SplitHostPort(v)
	}
	if err != nil {
		t.Errorf("%s: %s=%q: %v", where, name, v, err)
	}
}

// checkServing checks the probes, ports, scrape annotations and shutdown
// budget of an edge or worker.
func checkServing(t *testing.T, w workload) {
	t.Helper()
	c := w.c
	addrVar, portName := "NATTER_HTTP_ADDR", "http"
	if w.command == cmdWorker {
		addrVar, portName = "NATTER_ADMIN_ADDR", "admin"
	}
	addr, _ := c.env(addrVar)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "0.0.0.0" || port != strconv.Itoa(c.port(portName)) {
		t.Errorf("%v: %s=%q; want 0.0.0.0 on the container port %q (%d): the default 127.0.0.1 is unreachable from the kubelet", w.obj, addrVar, addr, portName, c.port(portName))
	}
	for _, p := range []struct {
		what string
		p    *probe
		path string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}, {"startupProbe", c.StartupProbe, "/healthz"}} {
		if p.p == nil || p.p.HTTPGet == nil || p.p.HTTPGet.Path != p.path || p.p.HTTPGet.Port != portName {
			t.Errorf("%v: %s must GET %s on port %s", w.obj, p.what, p.path, portName)
		}
	}
	// /readyz waits up to 3s for its checks.
	if p := c.ReadinessProbe; p != nil && p.TimeoutSeconds <= 3 {
		t.Errorf("%v: readinessProbe timeoutSeconds %d; /readyz may take 3s", w.obj, p.TimeoutSeconds)
	}
	a := w.tmpl.Metadata.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(c.port(portName)) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%v: scrape annotations %v; want /metrics on port %d", w.obj, a, c.port(portName))
	}

	// Shutdown budget: preStop, then the process's graceful shutdown
	// (the edge's lame duck runs inside it), all before SIGKILL.
	shutdown := envDuration(t, w, "NATTER_SHUTDOWN_TIMEOUT", 30*time.Second)
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if w.command == cmdEdge {
		lame := envDuration(t, w, "NATTER_LAME_DUCK", 5*time.Second)
		if lame >= shutdown {
			t.Errorf("%v: lame duck %v does not fit in the shutdown timeout %v", w.obj, lame, shutdown)
		}
		if preStop <= 0 {
			t.Errorf("%v: no preStop sleep: the edge would refuse upgrades while still in the Service's endpoints", w.obj)
		}
		if ping := envDuration(t, w, "NATTER_PING_INTERVAL", 25*time.Second); ping != 25*time.Second {
			t.Errorf("%v: ping interval %v; the load balancer timeouts (ingress.yaml, ../nginx) assume 25s", w.obj, ping)
		}
	}
	grace := 30 * time.Second // the Kubernetes default
	if g := w.tmpl.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= preStop+shutdown {
		t.Errorf("%v: terminationGracePeriodSeconds %v; want above preStop %v + shutdown timeout %v", w.obj, grace, preStop, shutdown)
	}
}

func envDuration(t *testing.T, w workload, name string, def time.Duration) time.Duration {
	t.Helper()
	v, ok := w.c.env(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Errorf("%v: %s=%q: %v", w.obj, name, v, err)
	}
	return d
}

func checkServices(t *testing.T, objs []object, ws []workload) {
	t.Helper()
	ports := make(map[string]bool) // "service/port name" served by a pod
	for _, o := range ofKind(objs, "Service") {
		var s service
		o.decode(t, &s)
		var target *workload
		for i := range ws {
			if selects(s.Spec.Selector, ws[i].tmpl.Metadata.Labels) {
				target = &ws[i]
			}
		}
		if target == nil {
			t.Errorf("%v: selector %v matches no pod template", o, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			if target.c.port(p.TargetPort) == 0 {
				t.Errorf("%v: targetPort %q is not a port of %v", o, p.TargetPort, target.obj)
			}
			ports[o.Metadata.Name+"/"+p.Name] = true
		}
	}
	for _, o := range ofKind(objs, "PodDisruptionBudget") {
		var p pdb
		o.decode(t, &p)
		var d deployment
		find(t, objs, "Deployment", o.Metadata.Name).decode(t, &d)
		if !selects(p.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
			t.Errorf("%v: selector %v does not match Deployment %s", o, p.Spec.Selector.MatchLabels, o.Metadata.Name)
		}
		if p.Spec.MaxUnavailable == nil || *p.Spec.MaxUnavailable != 1 {
			t.Errorf("%v: want maxUnavailable 1", o)
		}
	}
	for _, o := range ofKind(objs, "Ingress") {
		var in ingress
		o.decode(t, &in)
		for _, r := range in.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if !ports[b.Name+"/"+b.Port.Name] {
					t.Errorf("%v: backend %s port %q is not a Service port", o, b.Name, b.Port.Name)
				}
			}
		}
		a := o.Metadata.Annotations
		for _, k := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
			if n, err := strconv.Atoi(a[k]); err != nil || n <= 50 {
				t.Errorf("%v: %s %q; want above 2x the 25s ping interval", o, k, a[k])
			}
		}
	}
	for _, o := range ofKind(objs, "ServiceMonitor") {
		var m serviceMonitor
		o.decode(t, &m)
		matched := false
		for _, so := range ofKind(objs, "Service") {
			if !selects(m.Spec.Selector.MatchLabels, so.Metadata.Labels) {
				continue
			}
			matched = true
			for _, e := range m.Spec.Endpoints {
				if !ports[so.Metadata.Name+"/"+e.Port] || e.Path != "/metrics" {
					t.Errorf("%v: endpoint %s%s is not /metrics on a port of Service %s", o, e.Port, e.Path, so.Metadata.Name)
				}
			}
		}
		if !matched {
			t.Errorf("%v: selects no Service by its labels %v", o, m.Spec.Selector.MatchLabels)
		}
	}
}

var (
	seriesRe   = regexp.MustCompile(`\b(natter_[a-z0-9_]+)`)
	consumerRe = regexp.MustCompile(`consumer(?:_name)?="([A-Z_]+)"`)
)

func checkMonitoring(t *testing.T, objs []object, metrics map[string]bool, roles []string) {
	t.Helper()
	var pr prometheusRule
	find(t, objs, "PrometheusRule", "natter").decode(t, &pr)
	var all []alertRule
	for _, g := range pr.Spec.Groups {
		all = append(all, g.Rules...)
	}
	consumers := definedConsumers()
	for _, r := range all {
		if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
			t.Errorf("rule %+v: want alert, expr, a severity label and a summary", r)
		}
		if r.For != "" {
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
			}
		}
		if !balanced(r.Expr) {
			t.Errorf("rule %s: unbalanced brackets in %q", r.Alert, r.Expr)
		}
		for _, m := range seriesRe.FindAllString(r.Expr, -1) {
			if !servedMetric(metrics, m) {
				t.Errorf("rule %s: %s is not a metric natter serves", r.Alert, m)
			}
		}
		for _, m := range consumerRe.FindAllStringSubmatch(r.Expr, -1) {
			if _, ok := consumers[m[1]]; !ok {
				t.Errorf("rule %s: consumer %s is not one natter defines", r.Alert, m[1])
			}
		}
	}
	// The alerts operations.md asks for.
	for _, want := range []struct{ what, in string }{
		{"/readyz failing", `kube_pod_status_ready{namespace="natter", condition="false"}`},
		{"poison messages", `natter_worker_messages_total{outcome=~"poison|exhausted"}`},
		{"PERSIST lag", `consumer="PERSIST"`},
		{"slow consumers", `natter_edge_slow_consumers_total`},
	} {
		if !slices.ContainsFunc(all, func(r alertRule) bool { return strings.Contains(r.Expr, want.in) }) {
			t.Errorf("no alert rule on %s (%s)", want.what, want.in)
		}
	}
}

// balanced reports whether (), {} and [] nest correctly outside quotes.
func balanced(s string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	inQuote := false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '{' || r == '[':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inQuote
}
