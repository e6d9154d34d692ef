# shellcheck shell=sh
# Sourced (POSIX sh) by build steps that reach the network. When the build context carries extra
# CA certificates in ca/ (a TLS-intercepting proxy's, or the host's bundle), point apt, curl, git,
# npm, Node and pip at one bundle made of the system roots plus those certificates. Everything it
# creates lives under /tmp/parallax-ca, which the Dockerfiles keep out of the final image.
parallax_ca_dir=/tmp/parallax-ca
parallax_ca_extra=
for parallax_ca_file in "$parallax_ca_dir"/*.crt "$parallax_ca_dir"/*.pem; do
    case $parallax_ca_file in
        */bundle.pem) continue ;;
    esac
    [ -s "$parallax_ca_file" ] && parallax_ca_extra="$parallax_ca_extra $parallax_ca_file"
done
if [ -n "$parallax_ca_extra" ]; then
    parallax_ca_bundle=$parallax_ca_dir/bundle.pem
    {
        if [ -s /etc/ssl/certs/ca-certificates.crt ]; then cat /etc/ssl/certs/ca-certificates.crt; fi
        # shellcheck disable=SC2086 # the list is space-separated paths without spaces
        cat $parallax_ca_extra
    } >"$parallax_ca_bundle"
    export CURL_CA_BUNDLE="$parallax_ca_bundle" GIT_SSL_CAINFO="$parallax_ca_bundle" \
        NODE_EXTRA_CA_CERTS="$parallax_ca_bundle" npm_config_cafile="$parallax_ca_bundle" \
        PIP_CERT="$parallax_ca_bundle" REQUESTS_CA_BUNDLE="$parallax_ca_bundle" \
        SSL_CERT_FILE="$parallax_ca_bundle"
    if [ -d /etc/apt/apt.conf.d ]; then
        printf 'Acquire::https::CAInfo "%s";\n' "$parallax_ca_bundle" \
            >/etc/apt/apt.conf.d/99parallax-build-ca
    fi
fi
unset parallax_ca_file parallax_ca_extra
