package rundir

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
	"github.com/relaysoak/relaysoak/replay"
)

// RunFormat is run.json's format version: 2 records the load's every
// effective setting and the recipe; 1 (no "format") had neither.
const RunFormat = 2

// RunInfo is run.json: what is needed to repeat the run.
type RunInfo struct {
	Format     int            `json:"format,omitempty"`
	ID         string         `json:"id"`
	Started    time.Time      `json:"started"`
	Config     map[string]any `json:"config"`
	GoVersion  string         `json:"go_version"`
	Relaysoak  string         `json:"relaysoak_version"`
	Indigo     string         `json:"indigo_version"`
	RelayImage string         `json:"relay_image"`
	ImageID    string         `json:"relay_image_id,omitempty"`
	// Load is the replay's configuration with every default filled in
	// (rates, churn, weights, schedule, seed); Capture the capture's path
	// and digests.
	Load    replay.Config `json:"load"`
	Capture *CaptureInfo  `json:"capture,omitempty"`
	// Recipe is every effective setting by its flag name, as the command
	// that started the run had them: `relaysoak soak --repeat` reads it.
	Recipe map[string]string `json:"recipe,omitempty"`
}

// CaptureInfo names the capture a run replayed: the path and the digests
// of the files as given (not of a temporary import), so the run can be
// repeated and checked.
type CaptureInfo struct {
	Path   string            `json:"path"`
	Mode   replay.Mode       `json:"mode"`
	SHA256 map[string]string `json:"sha256"`
	// From the capture: what the re-hosted traffic follows, and what was
	// left to the defaults (too few samples).
	Shape     []string `json:"shape_from_capture,omitempty"`
	Defaulted []string `json:"defaulted,omitempty"`
}

// ReadRunInfo reads a run.json.
func ReadRunInfo(path string) (RunInfo, error) {
	var info RunInfo
	b, err := os.ReadFile(path)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// WriteRunInfo writes a run.json, all or nothing.
func WriteRunInfo(path string, info RunInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}
