package relay

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

const (
	// IndigoModule is the module whose cmd/relay is the default system under
	// test; its version is pinned in go.mod by a tool directive.
	IndigoModule = "github.com/bluesky-social/indigo"
	// IndigoImageRepo is the local repository of the default image.
	IndigoImageRepo = "relaysoak/indigo-relay"
	// Label marks everything the rig creates, so a crashed run's leftovers
	// can be swept: docker ps -aq --filter label=org.relaysoak=true.
	Label = "org.relaysoak"
)

// IndigoVersion is the pinned version of the indigo module: from this
// binary's build info when it links indigo, else from `go list -m`.
func IndigoVersion(ctx context.Context, moduleDir string) (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == IndigoModule {
				if d.Replace != nil {
					d = d.Replace
				}
				if d.Version != "" && d.Version != "(devel)" {
					return d.Version, nil
				}
			}
		}
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", IndigoModule)
	cmd.Dir = moduleDir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("reading the pinned version of %s with go list in %q: %w: %s", IndigoModule, moduleDir, err, ee.Stderr)
		}
		return "", fmt.Errorf("reading the pinned version of %s with go list in %q: %w", IndigoModule, moduleDir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// IndigoImageTag is the default image's tag for a module version.
func IndigoImageTag(version string) string {
	return IndigoImageRepo + ":" + strings.ReplaceAll(version, "+", "_")
}

// ImageConfig says how to get the default image. Zero values are sensible.
type ImageConfig struct {
	// ModuleDir is a directory inside this module (where `go build` finds the
	// pinned indigo); default the working directory.
	ModuleDir string
	// BuildDir keeps the static binary; default a temporary directory,
	// removed afterwards.
	BuildDir string
	// Log receives go build and docker build output; default io.Discard.
	Log io.Writer
	// Rebuild builds even when the tag exists.
	Rebuild bool
}

// EnsureIndigoImage returns the tag of the default image, building it when
// no image with that tag exists. The image is kept: later runs reuse it until
// the pinned version changes.
func EnsureIndigoImage(ctx context.Context, cfg ImageConfig) (tag string, built bool, err error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	version, err := IndigoVersion(ctx, cfg.ModuleDir)
	if err != nil {
		return "", false, err
	}
	tag = IndigoImageTag(version)
	cli, err := dockerClient(ctx)
	if err != nil {
		return "", false, err
	}
	defer cli.Close()
	if !cfg.Rebuild {
		if _, err := cli.ImageInspect(ctx, tag); err == nil {
			return tag, false, nil
		}
	}
	b := (&Indigo{}).Facts().Build
	fmt.Fprintf(cfg.Log, "relaysoak: building %s@%s/cmd/relay (static)\n", IndigoModule, version)
	if _, err := BuildGoImage(ctx, GoImage{Dir: cfg.ModuleDir, Pkg: IndigoModule + strings.TrimPrefix(b.Main, "."), Build: b, Tag: tag,
		Ports: []int{indigoAPIPort, indigoMetricsPort}, Labels: map[string]string{Label + ".indigo-version": version}, Log: cfg.Log, BuildDir: cfg.BuildDir}); err != nil {
		return "", false, fmt.Errorf("the default relay image: %w", err)
	}
	return tag, true, nil
}

// ScratchImage is a FROM scratch image around one static binary, which is
// its entrypoint: how images are made here without a registry (test targets
// use it; the default relay's image is made the same way).
type ScratchImage struct {
	// Tag of the image, e.g. relaysoak/testrelay:test. Required.
	Tag string
	// Binary is a static executable on the host. Required.
	Binary string
	// Ports are documented with EXPOSE.
	Ports []int
	// Args are the image's command after the entrypoint (CMD); none by
	// default.
	Args []string
	// Labels are added to the image; Label=true always is.
	Labels map[string]string
	// Log receives docker build output; default io.Discard.
	Log io.Writer
}

// binaryDigestLabel records the sha256 of the binary an image holds.
const binaryDigestLabel = Label + ".binary-sha256"

// EnsureScratchImage builds img unless an image with its tag already holds
// the same binary (its sha256 is kept in a label): an edited binary never
// runs under a stale tag, and an unchanged one is not rebuilt.
func EnsureScratchImage(ctx context.Context, img ScratchImage) (built bool, err error) {
	if img.Tag == "" || img.Binary == "" {
		return false, errors.New("relay: ScratchImage needs a Tag and a Binary")
	}
	if img.Log == nil {
		img.Log = io.Discard
	}
	data, err := os.ReadFile(img.Binary)
	if err != nil {
		return false, fmt.Errorf("reading the binary for %s: %w", img.Tag, err)
	}
	digest := fmt.Sprintf("%x", sha256.Sum256(data))
	cli, err := dockerClient(ctx)
	if err != nil {
		return false, err
	}
	defer cli.Close()
	if ins, err := cli.ImageInspect(ctx, img.Tag); err == nil && ins.Config != nil && ins.Config.Labels[binaryDigestLabel] == digest {
		return false, nil
	}
	dir, err := os.MkdirTemp("", "relaysoak-image-")
	if err != nil {
		return false, fmt.Errorf("making a build directory: %w", err)
	}
	defer os.RemoveAll(dir)
	name := filepath.Base(img.Binary)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
		return false, fmt.Errorf("copying %s into the build context: %w", img.Binary, err)
	}
	var df strings.Builder
	fmt.Fprintf(&df, "FROM scratch\nCOPY %s /%s\n", name, name)
	for _, p := range img.Ports {
		fmt.Fprintf(&df, "EXPOSE %d\n", p)
	}
	fmt.Fprintf(&df, "ENTRYPOINT [\"/%s\"]\n", name)
	if len(img.Args) > 0 {
		cmd, _ := json.Marshal(img.Args)
		fmt.Fprintf(&df, "CMD %s\n", cmd)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df.String()), 0o644); err != nil {
		return false, fmt.Errorf("writing Dockerfile in %s: %w", dir, err)
	}
	labels := map[string]string{Label: "true", binaryDigestLabel: digest}
	for k, v := range img.Labels {
		labels[k] = v
	}
	if err := buildImage(ctx, cli, dir, img.Tag, labels, img.Log); err != nil {
		return false, err
	}
	return true, nil
}

// buildImage sends dir (flat: Dockerfile and files) to the classic builder,
// which treats FROM scratch as no base, so nothing is pulled.
func buildImage(ctx context.Context, cli *testcontainers.DockerClient, dir, tag string, labels map[string]string, log io.Writer) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading build context %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("reading build context file: %w", err)
		}
		info, _ := e.Info()
		if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: int64(info.Mode().Perm()), Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return fmt.Errorf("writing build context: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("writing build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing build context: %w", err)
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Labels: labels,
		Version: build.BuilderV1, Dockerfile: "Dockerfile",
	})
	if err != nil {
		return fmt.Errorf("docker build of %s: %w", tag, err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("docker build of %s: reading progress: %w", tag, err)
		}
		if msg.Stream != "" {
			io.WriteString(log, msg.Stream)
		}
		if msg.Error != "" {
			return fmt.Errorf("docker build of %s: %s", tag, msg.Error)
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return fmt.Errorf("docker build of %s finished but the image is missing: %w", tag, err)
	}
	return nil
}

// dockerClient connects to the engine. A missing engine is an error that
// says so: the rig has nothing to test without one.
func dockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	disableRyuk()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Docker engine (is it running, is DOCKER_HOST right?): %w", err)
	}
	return cli, nil
}

// disableRyuk must run before any testcontainers call: the reaper image
// cannot be pulled here, and the setting is read once. Every way into the
// engine here (New, dockerClient) calls it first, so importing this
// package changes nothing.
func disableRyuk() {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// EnsureGoImage builds a Go main package (a directory, e.g.
// ./testdata/testrelay) static with cgo off, then its FROM scratch image, as
// EnsureScratchImage does: test targets are built this way.
func EnsureGoImage(ctx context.Context, pkgDir string, img ScratchImage) (built bool, err error) {
	dir, err := os.MkdirTemp("", "relaysoak-image-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	img.Binary = filepath.Join(dir, filepath.Base(pkgDir))
	if err := (GoBuild{}).Build(ctx, "", pkgDir, img.Binary, nil); err != nil {
		return false, err
	}
	built, err = EnsureScratchImage(ctx, img)
	if err != nil {
		return false, fmt.Errorf("%w (Docker is required)", err)
	}
	return built, nil
}
