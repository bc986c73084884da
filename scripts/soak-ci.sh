#!/usr/bin/env bash
# soak-ci.sh BIN [soak flags…]: what `make soak-ci` runs for the nightly
# workflow (and anyone, locally). It runs `BIN soak` with a known run ID,
# writes the headline and report.md into $GITHUB_STEP_SUMMARY when set,
# copies junit.xml to $JUNIT_DIR, and turns the verdict into an exit status
# CI understands: LEAK, CRASHED, LOST and RETAINED fail, INCONCLUSIVE warns and passes (a
# run too short or too noisy is not a regression).
#
# Environment: RELAYSOAK_ID (default ci-<UTC time>), RELAYSOAK_RUNS_DIR
# (default runs), JUNIT_DIR (default test-results). GitHub Actions reads the ::error:: and
# ::warning:: lines as annotations; elsewhere they are plain lines.
set -uo pipefail

bin=${1:?usage: soak-ci.sh BIN [soak flags…]}
shift
id=${RELAYSOAK_ID:-ci-$(date -u +%Y%m%dT%H%M%SZ)}
runs=${RELAYSOAK_RUNS_DIR:-runs}
junit_dir=${JUNIT_DIR:-test-results}
dir="$runs/$id"

# --id and --runs-dir last, so they win over the same flags passed through.
"$bin" soak "$@" --id="$id" --runs-dir="$runs"
rc=$?

# The headline is report.md's bold line (report.Headline); no jq needed.
headline=""
if [[ -f "$dir/report.md" ]]; then
	headline=$(sed -n 's/^\*\*\(.*\)\*\*$/\1/p' "$dir/report.md" | head -n 1)
fi
if [[ -z "$headline" ]]; then
	headline="relaysoak soak exited with status $rc and wrote no report (see the log above and $dir)"
fi

if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
	{
		echo "### relaysoak soak $id"
		echo
		echo "**$headline**"
		echo
		if [[ -f "$dir/report.md" ]]; then
			echo "<details><summary>report.md</summary>"
			echo
			# The plot is in the artifact, not beside the summary.
			sed -e '1,/^\*\*/d' -e '/^!\[memory over time\]/d' "$dir/report.md"
			echo
			echo "</details>"
		fi
	} >>"$GITHUB_STEP_SUMMARY"
fi
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
	echo "run_dir=$dir" >>"$GITHUB_OUTPUT"
fi

if [[ -f "$dir/junit.xml" ]]; then
	mkdir -p "$junit_dir"
	cp "$dir/junit.xml" "$junit_dir/relaysoak-soak.xml"
fi

# Workflow commands end at a newline and read % as an escape.
annotation=${headline//%/%25}
echo "$headline"
echo "run: $dir"
case $rc in
0) exit 0 ;;
3)
	echo "::warning title=relaysoak soak INCONCLUSIVE::$annotation"
	exit 0
	;;
1 | 4 | 8 | 9)
	echo "::error title=relaysoak soak::$annotation"
	exit "$rc"
	;;
*)
	echo "::error title=relaysoak soak could not run (exit $rc)::$annotation"
	exit "$rc"
	;;
esac
