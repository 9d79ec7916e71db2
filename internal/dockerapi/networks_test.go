package dockerapi_test

import (
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func TestNetworks(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)

	created, err := ts.Client.NetworkCreate(ctx, "appnet", client.NetworkCreateOptions{Labels: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Client.NetworkCreate(ctx, "appnet", client.NetworkCreateOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("duplicate name: %v, want a conflict", err)
	}
	list, err := ts.Client.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", "team=a")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].ID != created.ID {
		t.Errorf("filtered list %+v", list.Items)
	}
	all, err := ts.Client.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil || len(all.Items) != 4 {
		t.Errorf("all networks: %d, %v; want bridge, host, none and appnet", len(all.Items), err)
	}

	id := ts.run(t, &container.Config{Cmd: []string{"sleep", "infinity"}}, nil)
	if _, err := ts.Client.NetworkConnect(ctx, "appnet", client.NetworkConnectOptions{Container: id}); err != nil {
		t.Fatal(err)
	}
	ins, err := ts.Client.NetworkInspect(ctx, created.ID[:12], client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ins.Network.Containers[id]; !ok || ins.Network.Name != "appnet" {
		t.Errorf("inspect %+v", ins.Network)
	}
	if _, err := ts.Client.NetworkRemove(ctx, "appnet", client.NetworkRemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("remove of a network in use: %v, want a conflict", err)
	}
	if _, err := ts.Client.NetworkDisconnect(ctx, "appnet", client.NetworkDisconnectOptions{Container: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Client.NetworkRemove(ctx, "appnet", client.NetworkRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Client.NetworkInspect(ctx, "appnet", client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect after remove: %v", err)
	}

	if _, err := ts.Client.NetworkCreate(ctx, "spare", client.NetworkCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pruned, err := ts.Client.NetworkPrune(ctx, client.NetworkPruneOptions{})
	if err != nil || strings.Join(pruned.Report.NetworksDeleted, ",") != "spare" {
		t.Errorf("prune %+v, %v", pruned.Report, err)
	}

	for _, tc := range []struct {
		name, path, body string
		want             int
		wantMsg          string
	}{
		{"legacy CheckDuplicate", "/networks/create", `{"Name":"old","CheckDuplicate":true}`, 201, `"Id"`},
		{"no name", "/networks/create", `{"Driver":"bridge"}`, 400, "name is required"},
		{"unknown field", "/networks/create", `{"Name":"x","Drivr":"bridge"}`, 400, `unknown field "Drivr"`},
		{"connect without container", "/networks/bridge/connect", `{}`, 400, "container is required"},
		{"connect unknown network", "/networks/nope/connect", `{"Container":"` + id + `"}`, 404, "network nope not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(t, "POST", tc.path, strings.NewReader(tc.body), "Content-Type", "application/json")
			if resp.StatusCode != tc.want || !strings.Contains(body, tc.wantMsg) {
				t.Errorf("got %d %s, want %d with %q", resp.StatusCode, body, tc.want, tc.wantMsg)
			}
		})
	}
}

func TestVolumes(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)

	v, err := ts.Client.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "data", Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Volume.Name != "data" || v.Volume.Driver != "local" {
		t.Errorf("created %+v", v.Volume)
	}
	anon, err := ts.Client.VolumeCreate(ctx, client.VolumeCreateOptions{})
	if err != nil || anon.Volume.Name == "" {
		t.Fatalf("anonymous volume %+v, %v", anon.Volume, err)
	}
	list, err := ts.Client.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", "k=v")})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "data" {
		t.Errorf("filtered list %+v, %v", list.Items, err)
	}
	ins, err := ts.Client.VolumeInspect(ctx, "data", client.VolumeInspectOptions{})
	if err != nil || ins.Volume.Labels["k"] != "v" {
		t.Errorf("inspect %+v, %v", ins.Volume, err)
	}

	id := ts.create(t, &container.Config{Cmd: []string{"true"}}, &container.HostConfig{Binds: []string{"data:/data"}})
	if _, err := ts.Client.VolumeRemove(ctx, "data", client.VolumeRemoveOptions{Force: true}); !cerrdefs.IsConflict(err) {
		t.Errorf("remove of a volume in use: %v, want a conflict", err)
	}
	pruned, err := ts.Client.VolumePrune(ctx, client.VolumePruneOptions{})
	if err != nil || len(pruned.Report.VolumesDeleted) != 1 || pruned.Report.VolumesDeleted[0] != anon.Volume.Name {
		t.Errorf("prune %+v, %v; want only the anonymous volume", pruned.Report, err)
	}
	if _, err := ts.Client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Client.VolumeRemove(ctx, "data", client.VolumeRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Client.VolumeInspect(ctx, "data", client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect after remove: %v", err)
	}
	if _, err := ts.Client.VolumeRemove(ctx, "data", client.VolumeRemoveOptions{Force: true}); err != nil {
		t.Errorf("forced remove of a missing volume: %v", err)
	}

	_, body := ts.do(t, "GET", "/volumes", nil)
	if !strings.Contains(body, `"Volumes":[]`) || !strings.Contains(body, `"Warnings":[]`) {
		t.Errorf("empty list %s", body)
	}
}
