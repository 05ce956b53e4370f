#!/usr/bin/env bash
# Fetch the Long Range Arena data release (lra_release.gz, ~7.7 GB; Tay et al. 2021):
# download it resumably, print its size and sha256, extract it and check the layout the
# tasks read (listops-1000/, tsv_data/, pathfinder32..256/).
#
#   scripts/fetch_lra_release.sh                       # all steps, into data/lra_release
#   scripts/fetch_lra_release.sh --dest /big/lra_release --archive /big/lra_release.gz
#   scripts/fetch_lra_release.sh --download-only       # then --extract-only later
#   scripts/fetch_lra_release.sh --extract-only FILE   # extract a downloaded archive + check
#   scripts/fetch_lra_release.sh --check-only          # check an extracted release
#
# An interrupted download continues where it stopped (curl -C - / wget -c on ARCHIVE.part,
# renamed to ARCHIVE when complete); an existing ARCHIVE is not downloaded again.
# Options: --url URL (default $LRA_RELEASE_URL or the LRA bucket), --sha256 HEX (fail unless
# the archive has this digest; default $LRA_RELEASE_SHA256, else PINNED_SHA256 below),
# --tool curl|wget (default: curl if installed).
# Checksum pin: PINNED_SHA256 is empty because the project has no digest of lra_release.gz that
# it measured itself, and the LRA authors publish none; an empty pin means NOT VERIFIED, and the
# script says so and prints the digest it computed. Whoever downloads the archive once should
# commit that digest into PINNED_SHA256 (after checking the layout); from then on a mismatch fails.
# Defaults: DEST=$LRA_DATA_DIR/lra_release (data/lra_release), ARCHIVE=<DEST's parent>/lra_release.gz.
# Exit codes: 0 done, 1 download/extraction failed or something missing, 2 usage error.
set -euo pipefail

URL=${LRA_RELEASE_URL:-https://storage.googleapis.com/long-range-arena/lra_release.gz}
DEST="${LRA_DATA_DIR:-data}/lra_release"
ARCHIVE=""
PINNED_SHA256=""  # sha256 of lra_release.gz; empty = not verified (see the header)
SHA256=${LRA_RELEASE_SHA256:-$PINNED_SHA256}
TOOL=""
MODE=all
# what the tasks read; pathfinder folders hold curv_baseline, curv_contour_length_{9,14}
EXPECTED=(
  listops-1000/basic_train.tsv listops-1000/basic_val.tsv listops-1000/basic_test.tsv
  tsv_data/new_aan_pairs.train.tsv tsv_data/new_aan_pairs.eval.tsv tsv_data/new_aan_pairs.test.tsv
  pathfinder32 pathfinder64 pathfinder128 pathfinder256
)

usage() {  # the header comment; exit code $1
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit "$1"
}

die() {
  echo "fetch_lra_release: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest) DEST=${2:?--dest needs a folder}; shift 2 ;;
    --archive) ARCHIVE=${2:?--archive needs a file}; shift 2 ;;
    --url) URL=${2:?--url needs a URL}; shift 2 ;;
    --sha256) SHA256=${2:?--sha256 needs a hex digest}; shift 2 ;;
    --tool) TOOL=${2:?--tool needs curl or wget}; shift 2 ;;
    --download-only) MODE=download; shift ;;
    --extract-only) MODE=extract; ARCHIVE=${2:?--extract-only needs the archive}; shift 2 ;;
    --check-only) MODE=check; shift ;;
    -h | --help) usage 0 ;;
    *) echo "fetch_lra_release: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
ARCHIVE=${ARCHIVE:-$(dirname "$DEST")/lra_release.gz}

download() {
  if [[ -f "$ARCHIVE" ]]; then
    echo "archive $ARCHIVE exists; not downloading again (delete it to re-download)"
    return
  fi
  mkdir -p "$(dirname "$ARCHIVE")"
  local part="$ARCHIVE.part" tool=$TOOL
  if [[ -z "$tool" ]]; then
    if command -v curl >/dev/null; then tool=curl; elif command -v wget >/dev/null; then tool=wget
    else die "neither curl nor wget is installed"; fi
  fi
  if [[ -f "$part" ]]; then echo "resuming $part at $(wc -c <"$part" | tr -d ' ') bytes"; fi
  echo "downloading $URL -> $ARCHIVE (~7.7 GB)"
  case "$tool" in
    curl) curl --fail --location --retry 5 --continue-at - --output "$part" "$URL" ||
            die "download failed (curl exit $?); run the same command again to resume" ;;
    wget) wget --continue --tries=5 --output-document="$part" "$URL" ||
            die "download failed (wget exit $?); run the same command again to resume" ;;
    *) echo "fetch_lra_release: --tool must be curl or wget, got '$tool'" >&2; exit 2 ;;
  esac
  mv "$part" "$ARCHIVE"
}

report() {
  [[ -f "$ARCHIVE" ]] || die "archive $ARCHIVE not found"
  local size digest
  size=$(wc -c <"$ARCHIVE" | tr -d ' ')
  if command -v sha256sum >/dev/null; then digest=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
  else digest=$(shasum -a 256 "$ARCHIVE" | cut -d' ' -f1); fi
  echo "archive: $ARCHIVE"
  echo "size: $size bytes"
  echo "sha256: $digest"
  if [[ -z "$SHA256" ]]; then
    echo "sha256: NOT VERIFIED (no pinned digest; pass --sha256 HEX or set LRA_RELEASE_SHA256)"
  elif [[ "$digest" != "${SHA256,,}" ]]; then
    die "sha256 mismatch: expected $SHA256, got $digest (a corrupt or different archive)"
  else
    echo "sha256: verified"
  fi
}

extract() {
  # the archive's top folder lra_release/ becomes DEST itself (its nested lra_release/ holds the
  # complete copy the tasks read; a second listops-1000 and pathfinder128 sit beside it)
  mkdir -p "$DEST"
  echo "extracting into $DEST"
  tar -xzf "$ARCHIVE" -C "$DEST" --strip-components=1 || die "extraction of $ARCHIVE failed"
}

check() {
  # the folder the tasks read: DEST/lra_release (the archive's nested complete copy) when it
  # exists, as tasks/base.py release_path does, else DEST itself
  local root=$DEST missing=()
  if [[ -d "$DEST/lra_release" ]]; then root=$DEST/lra_release; fi
  [[ -d "$root" ]] || die "release folder $DEST not found"
  for item in "${EXPECTED[@]}"; do
    if [[ -e "$root/$item" ]]; then echo "ok       $item"; else echo "MISSING  $item"; missing+=("$item"); fi
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    die "${#missing[@]} expected item(s) missing under $root: ${missing[*]}"
  fi
  echo "release complete: $root"
  echo "use it with: lra-data task=retrieval task.release_dir=$DEST  (and task=listops task.source=release)"
}

case "$MODE" in
  all) download; report; extract; check ;;
  download) download; report ;;
  extract) report; extract; check ;;
  check) check ;;
esac
