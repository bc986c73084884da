package relay

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GoBuild is how a Go relay's main package becomes the one static binary
// of a FROM scratch image: the facts a build from source needs (indigo's
// profile gives its own; a generic profile writes them under `build:`).
type GoBuild struct {
	// Main is the main package, relative to the module's root
	// ("./cmd/relay"); "" when the relay is not built from Go source.
	Main string `yaml:"main"`
	// CGO builds with cgo (a relay linking sqlite), linked static by
	// LDFlags; otherwise CGO_ENABLED=0.
	CGO bool `yaml:"cgo"`
	// Tags and LDFlags are go build's -tags and -ldflags.
	Tags    []string `yaml:"tags"`
	LDFlags string   `yaml:"ldflags"`
	// Args are the image's command after its entrypoint, the binary
	// ("serve"); none when the binary needs no arguments.
	Args []string `yaml:"args"`
}

// command builds pkg, in the module at dir ("" the working directory),
// into out.
func (b GoBuild) command(ctx context.Context, dir, pkg, out string) *exec.Cmd {
	args := []string{"build", "-trimpath"}
	if len(b.Tags) > 0 {
		args = append(args, "-tags", strings.Join(b.Tags, ","))
	}
	if b.LDFlags != "" {
		args = append(args, "-ldflags", b.LDFlags)
	}
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cgo := "CGO_ENABLED=0"
	if b.CGO {
		cgo = "CGO_ENABLED=1"
	}
	cmd.Env = append(os.Environ(), cgo)
	return cmd
}

// Build compiles pkg (a package path, or a directory such as b.Main) in
// the module at dir into the static binary out; go's output goes to log.
func (b GoBuild) Build(ctx context.Context, dir, pkg, out string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	cmd := b.command(ctx, dir, pkg, out)
	var tail strings.Builder
	cmd.Stdout, cmd.Stderr = io.MultiWriter(log, &tail), io.MultiWriter(log, &tail)
	if err := cmd.Run(); err != nil {
		where := dir
		if where == "" {
			where = "the working directory"
		}
		return fmt.Errorf("go %s in %s: %w\n%s", strings.Join(cmd.Args[1:], " "), where, err, strings.Join(lastLines(tail.String(), 20), "\n"))
	}
	return nil
}

// GoImage is a Go relay built from source into a FROM scratch image.
type GoImage struct {
	// Dir is the module's root (a checkout); Pkg the main package (default
	// Build.Main).
	Dir, Pkg string
	Build    GoBuild
	// Tag, Ports and Labels are the image's (ScratchImage).
	Tag    string
	Ports  []int
	Labels map[string]string
	// Log receives go build and docker build output; default io.Discard.
	Log io.Writer
	// BuildDir keeps the binary (BuildDir/relay); default a temporary
	// directory, removed afterwards.
	BuildDir string
}

// BuildGoImage builds img's binary in a temporary directory and its image
// (EnsureScratchImage: rebuilt only when the binary differs).
func BuildGoImage(ctx context.Context, img GoImage) (built bool, err error) {
	pkg := img.Pkg
	if pkg == "" {
		pkg = img.Build.Main
	}
	if pkg == "" {
		return false, fmt.Errorf("relay: building %s: no main package (the profile's build facts name none)", img.Tag)
	}
	dir := img.BuildDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "relaysoak-build-"); err != nil {
			return false, fmt.Errorf("making a build directory: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("making build directory %s: %w", dir, err)
	}
	bin := filepath.Join(dir, "relay")
	if err := img.Build.Build(ctx, img.Dir, pkg, bin, img.Log); err != nil {
		return false, err
	}
	return EnsureScratchImage(ctx, ScratchImage{Tag: img.Tag, Binary: bin, Ports: img.Ports, Args: img.Build.Args, Labels: img.Labels, Log: img.Log})
}

// BuildWithCommand builds an image with a user's command (a Dockerfile's
// build, a Zig or Rust build): run by sh in dir, given dir and the tag to
// produce as $1 and $2 and as WORKTREE and TAG, it must leave an image
// with that tag.
func BuildWithCommand(ctx context.Context, dir, command, tag string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", command, "relaysoak-build", dir, tag)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WORKTREE="+dir, "TAG="+tag)
	var tail strings.Builder
	cmd.Stdout, cmd.Stderr = io.MultiWriter(log, &tail), io.MultiWriter(log, &tail)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the build command %q in %s: %w\n%s", command, dir, err, strings.Join(lastLines(tail.String(), 20), "\n"))
	}
	if ImageID(ctx, tag) == "" {
		return fmt.Errorf("the build command %q ran but left no image %s (it is given the tag as $2 and $TAG)", command, tag)
	}
	return nil
}
