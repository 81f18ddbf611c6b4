#!/bin/sh
# genstudio: remove what install.sh added for this user (menu entry, icons, file types).
# The bundle itself and your models folder are left alone; delete the bundle's folder to remove the app.
set -eu

data=${XDG_DATA_HOME:-$HOME/.local/share}
apps=$data/applications
hicolor=$data/icons/hicolor

rm -f "$apps/genstudio.desktop"
for dir in "$hicolor"/*/; do
    [ -d "$dir" ] || continue
    rm -f "${dir}apps/genstudio.png" "${dir}mimetypes/application-x-onnx.png" \
          "${dir}mimetypes/application-x-genstudio-model.png"
done
rm -f "$data/mime/packages/genstudio-mime.xml"

if command -v update-mime-database >/dev/null 2>&1 && [ -d "$data/mime" ]; then update-mime-database "$data/mime" || true; fi
if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$apps" ]; then update-desktop-database -q "$apps" || true; fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$hicolor/index.theme" ]; then
    gtk-update-icon-cache -q -t -f "$hicolor" || true
fi
echo "genstudio: removed the menu entry, icons and file types from $data"
