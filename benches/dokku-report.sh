#!/usr/bin/env bash
# "dokku's way" of certs:report, for the benchmark: for each app, the openssl processes
# dokku's certs plugin starts (plugins/certs/report.go and internal-functions):
#   openssl x509 -noout -text  x4  (expires-at, issuer, starts-at, hostnames)
#   openssl x509 -noout -subject -nameopt compat   (subject)
#   openssl x509 -noout -subject -nameopt RFC2253  (hostnames' CN)
#   openssl verify -verbose -purpose sslserver     (verified)
#   benches/dokku-report.sh [app...]   (no app: every app under DOKKU_ROOT)
set -eo pipefail
apps=("$@")
[[ ${#apps[@]} -gt 0 ]] || mapfile -t apps < <(find "$DOKKU_ROOT" -mindepth 1 -maxdepth 1 -type d ! -name '.*' ! -name tls -printf '%f\n' | sort)
for app in "${apps[@]}"; do
  crt="$DOKKU_ROOT/$app/tls/server.crt"
  echo "=====> $app ssl information"
  if [[ -e "$crt" && -e "$DOKKU_ROOT/$app/tls/server.key" ]]; then
    expires=$(openssl x509 -in "$crt" -noout -text | grep "Not After :" | awk -F " : " '{ print $2 }')
    issuer=$(openssl x509 -in "$crt" -noout -text | grep "Issuer:" | sed -e "s/^ *Issuer: //")
    starts=$(openssl x509 -in "$crt" -noout -text | grep "Not Before:" | awk -F ": " '{ print $2 }')
    subject=$(openssl x509 -in "$crt" -noout -subject -nameopt compat | sed -e "s:subject=::; s:^/::; s:/:; :g")
    cn=$(openssl x509 -in "$crt" -noout -subject -nameopt RFC2253 | tr ',' '\n' | grep '^CN=' | cut -c4- || true)
    san=$(openssl x509 -in "$crt" -noout -text | grep -A1 '509v3 Subject Alternative Name:' | tail -n 1 | sed -e "s/[[:space:]]*DNS://g" | tr ',' ' ' || true)
    hostnames=$(printf '%s\n' $cn $san | sort -u | xargs)
    verified="self signed"
    out=$(openssl verify -verbose -purpose sslserver "$crt" 2>/dev/null | tail -1 | awk -F ':' '{ print $2 }' | xargs || true)
    [[ "$out" == "OK" ]] && verified="verified by a certificate authority"
    enabled=true
  else
    expires="" issuer="" starts="" subject="" hostnames="" verified="" enabled=false
  fi
  printf '       %-31s%s\n' "Ssl dir:" "$DOKKU_ROOT/$app/tls" "Ssl enabled:" "$enabled" "Ssl expires at:" "$expires" \
    "Ssl hostnames:" "$hostnames" "Ssl issuer:" "$issuer" "Ssl starts at:" "$starts" "Ssl subject:" "$subject" \
    "Ssl verified:" "$verified"
done
