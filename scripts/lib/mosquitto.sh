# Shared by scripts: run a throwaway Mosquitto MQTT broker on 127.0.0.1.

start_mosquitto() {
  MQTTPORT=${MQTTPORT:-$(( 20000 + RANDOM % 20000 ))}
  MQTTTMP=$(mktemp -d /tmp/citytwin-mqtt.XXXXXX)
  cat > "$MQTTTMP/mosquitto.conf" <<CONF
listener $MQTTPORT 127.0.0.1
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
  export MQTTPORT MQTTTMP
  echo "Mosquitto listening on 127.0.0.1:$MQTTPORT"
}

stop_mosquitto() {
  [ -n "${MQTTTMP:-}" ] || return 0
  [ -s "$MQTTTMP/mosquitto.pid" ] && kill "$(cat "$MQTTTMP/mosquitto.pid")" 2>/dev/null || true
  rm -rf "$MQTTTMP"
}
