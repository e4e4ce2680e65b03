#!/usr/bin/env bash
# Set up (scripts/setup.sh), make a demo folder of real music, and classify it with the shipped
# model. The demo files come from ../shared/data/gtzan when it is there (one clip per genre,
# re-encoded as 44.1 kHz stereo MP3 like a downloaded song); otherwise synthetic tones stand in.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
demo=${DEMO_DIR:-demo}
mkdir -p "$demo/inbox"
src=../shared/data/gtzan
if [ -d "$src" ]; then
  for g in "$src"/*/; do
    f=$(ls "$g" | sort | tail -n 1)
    out="$demo/inbox/$(basename "$g") demo.mp3"
    [ -e "$out" ] || ffmpeg -nostdin -v error -y -i "$g$f" -ar 44100 -ac 2 -b:a 192k "$out"
  done
else
  echo "demo: $src absent; using synthetic tones" >&2
  for hz in 110 440 1760; do
    [ -e "$demo/inbox/tone $hz.wav" ] || ffmpeg -nostdin -v error -y -f lavfi -i "sine=frequency=$hz:duration=20" "$demo/inbox/tone $hz.wav"
  done
fi
exec .venv/bin/genre-daemon classify "$demo"/inbox/*
