# Shared by scripts: run a throwaway Mosquitto MQTT broker on 127.0.0.1: plain MQTT on $MQTTPORT and MQTT over
# TLS on $MQTTSPORT, with a certificate for 127.0.0.1 from a throwaway CA ($MQTTCA; needs openssl).

start_mosquitto() {
  MQTTPORT=${MQTTPORT:-$(( 20000 + RANDOM % 20000 ))}
  MQTTSPORT=${MQTTSPORT:-$(( MQTTPORT + 1 ))}
  MQTTTMP=$(mktemp -d /tmp/citytwin-mqtt.XXXXXX)
  MQTTCA="$MQTTTMP/ca.crt"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=CityTwin test CA" \
    -keyout "$MQTTTMP/ca.key" -out "$MQTTCA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$MQTTTMP/server.key" -out "$MQTTTMP/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' > "$MQTTTMP/server.ext"
  openssl x509 -req -in "$MQTTTMP/server.csr" -CA "$MQTTCA" -CAkey "$MQTTTMP/ca.key" -CAcreateserial -days 2 \
    -extfile "$MQTTTMP/server.ext" -out "$MQTTTMP/server.crt" 2>/dev/null
  cat > "$MQTTTMP/mosquitto.conf" <<CONF
per_listener_settings false
listener $MQTTPORT 127.0.0.1
listener $MQTTSPORT 127.0.0.1
cafile $MQTTCA
certfile $MQTTTMP/server.crt
keyfile $MQTTTMP/server.key
allow_anonymous true
persistence false
# Keep what a busy subscriber has not taken yet instead of dropping it (the default queue is 1000 messages).
max_queued_messages 1000000
max_inflight_messages 0
user root
pid_file $MQTTTMP/mosquitto.pid
log_dest file $MQTTTMP/log
CONF
  /usr/sbin/mosquitto -c "$MQTTTMP/mosquitto.conf" -d
  for _ in $(seq 50); do [ -s "$MQTTTMP/mosquitto.pid" ] && break; sleep 0.1; done
  export MQTTPORT MQTTSPORT MQTTTMP MQTTCA
  echo "Mosquitto listening on 127.0.0.1:$MQTTPORT (MQTT) and 127.0.0.1:$MQTTSPORT (MQTT over TLS)"
}

stop_mosquitto() {
  [ -n "${MQTTTMP:-}" ] || return 0
  [ -s "$MQTTTMP/mosquitto.pid" ] && kill "$(cat "$MQTTTMP/mosquitto.pid")" 2>/dev/null || true
  rm -rf "$MQTTTMP"
}
