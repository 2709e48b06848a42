#!/bin/sh
# The system packages annoray needs beyond Python: Tesseract OCR and the language packs of the seven languages it
# supports (Debian/Ubuntu); with --tests also what the test suite needs: Chromium (the dashboard's browser tests) and
# Java 17 (Spark). Does nothing when they are all there; uses sudo when not root.
set -e
PACKAGES="tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-spa tesseract-ocr-por tesseract-ocr-ita tesseract-ocr-dan tesseract-ocr-ron"
if [ "$1" = "--tests" ]; then
    PACKAGES="$PACKAGES chromium"
    command -v java >/dev/null 2>&1 || PACKAGES="$PACKAGES openjdk-17-jre-headless"
fi
missing=""
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get install -y -qq $missing >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing >/dev/null; }
