#!/bin/sh
# genstudio: add the studio to this user's desktop menu, with its icons and the file types it opens
# (.onnx files and model folders' model.json). No root needed; uninstall.sh takes it all away again.
#
#   install.sh [BUNDLE_DIR]
#
# BUNDLE_DIR is the folder that holds the `genstudio` executable (default: this script's folder when the
# executable is beside it, as in a built bundle, else ../../dist/genstudio from a source checkout).
# Files go under ${XDG_DATA_HOME:-~/.local/share}: applications/, icons/hicolor/, mime/.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
    bundle=$1
elif [ -x "$here/genstudio" ]; then
    bundle=$here
else
    bundle=$here/../../dist/genstudio
fi
if [ ! -d "$bundle" ] || [ ! -x "$bundle/genstudio" ]; then
    echo "install.sh: no genstudio executable in $bundle (build the bundle with 'make installer')" >&2
    exit 1
fi
bundle=$(cd "$bundle" && pwd)
exe=$bundle/genstudio

icons=""
for d in "$bundle/_internal/resources/icons" "$bundle/resources/icons" "$here/../../resources/icons"; do
    if [ -d "$d" ]; then icons=$d; break; fi
done
mime_xml=""
for f in "$here/genstudio-mime.xml" "$bundle/genstudio-mime.xml"; do
    if [ -f "$f" ]; then mime_xml=$f; break; fi
done
[ -n "$icons" ] || { echo "install.sh: no icons folder found beside $bundle" >&2; exit 1; }
[ -n "$mime_xml" ] || { echo "install.sh: genstudio-mime.xml not found beside $here" >&2; exit 1; }

data=${XDG_DATA_HOME:-$HOME/.local/share}
apps=$data/applications
hicolor=$data/icons/hicolor
mkdir -p "$apps" "$hicolor" "$data/mime/packages"

# Icons: the app and both file types, at every size there is a PNG for.
for png in "$icons"/genstudio-*.png; do
    [ -f "$png" ] || continue
    size=${png##*/genstudio-}
    size=${size%.png}
    case $size in *[!0-9]*|'') continue ;; esac
    for kind in apps mimetypes; do mkdir -p "$hicolor/${size}x$size/$kind"; done
    cp "$png" "$hicolor/${size}x$size/apps/genstudio.png"
    cp "$png" "$hicolor/${size}x$size/mimetypes/application-x-onnx.png"
    cp "$png" "$hicolor/${size}x$size/mimetypes/application-x-genstudio-model.png"
done

# The Exec key's quoting rules: inside double quotes escape " ` $ \ with a backslash; then, as in
# every string value, a backslash is written twice; a literal % is %%.
quoted=$(printf '%s' "$exe" | sed -e 's/[\\"`$]/\\&/g' -e 's/\\/\\\\/g' -e 's/%/%%/g')
# `--` keeps a file named like a subcommand a file; with no file, `genstudio --` just opens the studio.
desktop=$apps/genstudio.desktop
cat > "$desktop.tmp" <<DESKTOP
[Desktop Entry]
Type=Application
Version=1.4
Name=genstudio
GenericName=Generative Model Studio
Comment=Chat, flows, VAEs and any ONNX model, offline
Exec="$quoted" -- %f
TryExec=$exe
Path=$bundle
Icon=genstudio
Terminal=false
Categories=Science;ArtificialIntelligence;
Keywords=ONNX;LLM;diffusion;VAE;flow;model;
MimeType=application/x-onnx;application/x-genstudio-model;
StartupNotify=true
StartupWMClass=genstudio
DESKTOP
mv "$desktop.tmp" "$desktop"
chmod 644 "$desktop"

cp "$mime_xml" "$data/mime/packages/genstudio-mime.xml"

# Refresh the desktop's caches where the tools exist (all optional; the files above are what counts).
if command -v update-mime-database >/dev/null 2>&1; then update-mime-database "$data/mime" || true; fi
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database -q "$apps" || true; fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$hicolor/index.theme" ]; then
    gtk-update-icon-cache -q -t -f "$hicolor" || true
fi
touch "$hicolor" 2>/dev/null || true
if command -v xdg-mime >/dev/null 2>&1; then
    xdg-mime default genstudio.desktop application/x-onnx application/x-genstudio-model || true
fi

echo "genstudio: installed the menu entry $desktop"
echo "genstudio: it starts $exe; .onnx files and model.json open in the Models tab"
