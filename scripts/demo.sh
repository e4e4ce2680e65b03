#!/usr/bin/env bash
# Set up (scripts/setup.sh), make a demo tree (demo/inbox, demo/library, demo/state and
# demo/config.yaml), put real music in the inbox and start the daemon on it with the shipped
# model, in the foreground (Ctrl-C stops it). The demo files come from ../shared/data/gtzan when
# it is there (one clip per genre, re-encoded as 44.1 kHz stereo MP3 like a downloaded song);
# otherwise synthetic tones stand in. Drop more files into demo/inbox while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
demo=$(realpath -m "${DEMO_DIR:-demo}")
mkdir -p "$demo/inbox" "$demo/library" "$demo/state"
cat > "$demo/config.yaml" <<YAML
inbox: $demo/inbox
library: $demo/library
review_dir: $demo/library/_review
quarantine_dir: $demo/inbox/.quarantine
state_dir: $demo/state
settle_seconds: 1
YAML
src=../shared/data/gtzan
if [ -d "$src" ]; then
  for g in "$src"/*/; do
    f=$(ls "$g" | sort | tail -n 1)
    out="$demo/inbox/$(basename "$g") demo.mp3"
    ffmpeg -nostdin -v error -y -i "$g$f" -ar 44100 -ac 2 -b:a 192k "$demo/.tmp.mp3" && mv "$demo/.tmp.mp3" "$out"
  done
else
  echo "demo: $src absent; using synthetic tones" >&2
  for hz in 110 440 1760; do
    ffmpeg -nostdin -v error -y -f lavfi -i "sine=frequency=$hz:duration=20" "$demo/inbox/tone $hz.wav"
  done
fi
echo "demo: watching $demo/inbox, sorting into $demo/library (Ctrl-C to stop)" >&2
exec .venv/bin/genre-daemon run --config "$demo/config.yaml"
