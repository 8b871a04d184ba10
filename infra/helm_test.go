package infra_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// helmValues is the part of nats-values.yaml the tests read.
type helmValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool           `yaml:"enabled"`
			Replicas int            `yaml:"replicas"`
			Merge    map[string]any `yaml:"merge"`
		} `yaml:"cluster"`
		JetStream struct {
			Enabled   bool `yaml:"enabled"`
			FileStore struct {
				Enabled bool   `yaml:"enabled"`
				Dir     string `yaml:"dir"`
				PVC     struct {
					Enabled bool   `yaml:"enabled"`
					Size    string `yaml:"size"`
				} `yaml:"pvc"`
			} `yaml:"fileStore"`
			Merge map[string]any `yaml:"merge"`
		} `yaml:"jetstream"`
		Monitor struct {
			Enabled bool `yaml:"enabled"`
			Port    int  `yaml:"port"`
		} `yaml:"monitor"`
	} `yaml:"config"`
	PromExporter struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"promExporter"`
}

func natsValues(tb testing.TB) helmValues {
	tb.Helper()
	var v helmValues
	if err := yaml.Unmarshal([]byte(readFile(tb, filepath.Join(k8sDir, "nats-values.yaml"))), &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// TestNATSHelmValues checks the values for the nats-io/nats chart: a 3-node
// cluster, JetStream on a PVC, the monitor port KEDA and the exporter use,
// and the same sync_interval and route pings as infra/nats/cluster.
func TestNATSHelmValues(t *testing.T) {
	t.Parallel()
	v := natsValues(t)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster enabled %v, replicas %d; want a 3-node cluster (R3 streams)", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled || c.JetStream.FileStore.Dir == "" {
		t.Errorf("jetstream %+v; want file storage on a PVC", c.JetStream)
	}
	if q, err := quantity(c.JetStream.FileStore.PVC.Size); err != nil || q < 1<<30 {
		t.Errorf("jetstream PVC size %q", c.JetStream.FileStore.PVC.Size)
	}
	if !c.Monitor.Enabled || c.Monitor.Port != 8222 || !v.PromExporter.Enabled {
		t.Errorf("monitor %+v, exporter %v; want monitoring on 8222 and the exporter (KEDA and alerts read them)", c.Monitor, v.PromExporter.Enabled)
	}
	pi, ok := c.Cluster.Merge["ping_interval"].(string)
	if d, err := time.ParseDuration(pi); !ok || err != nil || d != routePingInterval || c.Cluster.Merge["ping_max"] != routePingMax {
		t.Errorf("cluster merge %v; want ping_interval %q and ping_max %d, as infra/nats/cluster", c.Cluster.Merge, routePingInterval.String(), routePingMax)
	}
	si, ok := c.JetStream.Merge["sync_interval"].(string)
	if d, err := time.ParseDuration(si); !ok || err != nil || d != parseConf(t, filepath.Join("nats", "cluster", "n1.conf")).SyncInterval {
		t.Errorf("jetstream merge sync_interval %v; want the string of infra/nats/cluster's sync_interval", c.JetStream.Merge["sync_interval"])
	}
}

// TestKustomizeBuild checks that the kustomization lists every manifest
// file (except the example Secret), and, when kubectl is installed, renders
// infra/k8s with its built-in kustomize and finds every object.
func TestKustomizeBuild(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kz struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(raw, &kz); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range kz.Resources {
		listed[r] = true
	}
	for _, f := range k8sFiles(t) {
		if b := filepath.Base(f); b != "secret.example.yaml" && !listed[b] {
			t.Errorf("kustomization.yaml does not list %s", b)
		}
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Log("kubectl not installed: rendering not checked (the listing above and TestK8sManifests still are)")
		return
	}
	out, err := exec.Command(kubectl, "kustomize", k8sDir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", k8sDir, err, out)
	}
	got := make(map[string]bool)
	for _, o := range decodeDocs(t, "kubectl kustomize", out) {
		got[o.Kind+"/"+o.Metadata.Name] = true
	}
	for _, f := range k8sFiles(t) {
		if filepath.Base(f) == "secret.example.yaml" {
			continue
		}
		for _, o := range loadManifests(t, f) {
			if !got[o.Kind+"/"+o.Metadata.Name] {
				t.Errorf("kubectl kustomize did not render %v", o)
			}
		}
	}
}
