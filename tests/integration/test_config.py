"""Node configuration in YAML: a table of valid files (both forms, every default, each
time unit) with their resolved settings, a table of invalid files with the exact
line:column and message of each error, a table of node files in ESPHome's styles
(packages, !include with vars, secrets, substitutions with -s, unknown components,
where the node is) with their settings or errors, and codegen output that compiles."""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import run_ota  # noqa: E402

VALID = [
    # (yaml, expected lines of `ota config`)
    ("""
     esphome:
       name: livingroom
     esp32:
       board: esp32dev
     ota:
       safe_mode: True
       password: VERYSECURE
     """, ["name:               livingroom (host livingroom.local)",
           "platform:           esp32, board esp32dev", "ota port:           3232",
           "ota id:             ota", "protocol version:   2",
           "password:           set (stored on the node as a salted verifier)",
           "safe mode:          on", "  num_attempts:     10",
           "  boot_is_good_after: 60000 ms", "  reboot_timeout:   300000 ms",
           "rollback_after:     3 boots", "logger:             off",
           "mdns:               on, answers livingroom.local and advertises _ota._tcp"]),
    ("""
     esphomeyaml:
       name: kitchen
       platform: ESP8266
       board: nodemcuv2
     ota:
       port: 8267
       id: kitchen_ota
       safe_mode: false
       num_attempts: 4
       reboot_timeout: 2min
     """, ["platform:           esp8266, board nodemcuv2", "ota port:           8267",
           "ota id:             kitchen_ota", "password:           not set",
           "safe mode:          off", "  num_attempts:     4", "  reboot_timeout:   120000 ms"]),
    ("""
     esphome:
       name: garage
     esp8266:
       board: d1_mini
     """, ["platform:           esp8266, board d1_mini", "ota:                not configured"]),
    ("""
     esphome:
       name: node-2
     host:
     logger:
       port: 4000
     wifi:
       ssid: home
     ota:
       - platform: web_server
       - platform: esphome
         id: fw
         version: 1
         password: pw
         legacy_auth: true
         allow_md5: yes
         rollback_after: 5
     safe_mode:
       disabled: false
       num_attempts: 3
       boot_is_good_after: 500ms
       reboot_timeout: 1h
     """, ["platform:           host", "ota port:           3232", "ota id:             fw",
           "protocol version:   1",
           "legacy auth:        SHA-256 and MD5 (plain password on the node)",
           "  num_attempts:     3", "  boot_is_good_after: 500 ms",
           "  reboot_timeout:   3600000 ms", "rollback_after:     5 boots",
           "logger:             on, log viewers on port 4000"]),
    ("""
     esphome:
       name: secretive
     host:
     ota:
       - platform: esphome
         password: !secret ota_password
     safe_mode:
       disabled: true
       boot_is_good_after: 45s
       reboot_timeout: 1min
     """, ["password:           set (stored on the node as a salted verifier)",
           "safe mode:          off", "  boot_is_good_after: 45000 ms",
           "  reboot_timeout:   60000 ms"]),
    ("""
     esphome:
       name: hidden
     host:
     ota:
     mdns:
       disabled: true
     """, ["mdns:               off"]),
    ("""
     esphome:
       name: puller
     host:
     ota:
     http_request:
       verify_ssl: false
     update:
       - platform: other_platform
         anything: goes
       - platform: http_request
         name: Firmware Update
         source: https://updates.example.com/fw/manifest.json
         update_interval: 30min
     """, ["pull updates:       https://updates.example.com/fw/manifest.json, every 1800 s "
           "(with jitter)"]),
    ("""
     esphome:
       name: puller
     host:
     ota:
     update:
       - platform: http_request
         source: http://10.0.0.2/manifest.json
     """, ["pull updates:       http://10.0.0.2/manifest.json, every 21600 s (with jitter)"]),
]

INVALID = [
    # (yaml, expected error after "FILE:")
    ("""
     esphome:
       name: x
     host:
     mdns:
       disabled: sometimes
     """, "5:13: disabled must be true or false, not 'sometimes'"),
    ("""
     esphome:
       name: x
     host:
     ota:
       pasword: y
     """, "5:3: unknown key 'pasword' in ota (did you mean 'password'?)"),
    ("""
     esphome:
       name: x
     host:
     ota:
       port: 70000
     """, "5:9: port must be between 1 and 65535, not 70000"),
    ("""
     esphome:
       name: x
     host:
     ota:
       port: eighty
     """, "5:9: port must be a whole number, not 'eighty'"),
    ("""
     esphome:
       name: x
     host:
     ota:
       safe_mode: maybe
     """, "5:14: safe_mode must be true or false, not 'maybe'"),
    ("""
     esphome:
       name: x
     host:
     safe_mode:
       reboot_timeout: 5 minutes
     """, "5:19: reboot_timeout must be a time such as 500ms, 60s, 5min or 1h, not '5 minutes'"),
    ("""
     esphome:
       name: x
     host:
     ota:
       password: !secret missing_one
     """, "5:13: secret 'missing_one' is not defined in {dir}/secrets.yaml"),
    ("""
     esphome:
       name: Living Room
     host:
     """, "2:9: name 'Living Room' may contain only lowercase letters, digits, '-' and '_' "
          "(it becomes the host name Living Room.local)"),
    ("""
     esphome:
       name: x
     esp32:
     ota:
       - platform: esphome
         id: 2fast
     """, "6:9: id '2fast' must be a C identifier (letters, digits, '_', not starting with a "
          "digit)"),
    # (an unknown top-level name such as wiif: is now ignored like any component this
    # tool does not read: ESPHome has hundreds, see ESPHOME_STYLES; typos are caught
    # inside the blocks we read)
    ("""
     esphome:
       name: x
     host:
     wifi:
       ssid: a
       use_adress: 10.0.0.2
     """, "6:3: unknown key 'use_adress' in wifi (did you mean 'use_address'?)"),
    ("""
     esphome:
       name: x
     """, "1:1: no platform: add a platform block (esp32:, esp8266:, rp2040:, bk72xx:, "
          "rtl87xx:, host: ...) or platform: under esphome:"),
    ("""
     esphome:
       name: x
       platform: ESP31
     """, "3:13: platform must be one of ESPHome's: ESP32, ESP8266, RP2040, BK72XX, RTL87XX, "
          "LN882X, LIBRETINY, NRF52 or HOST, not 'ESP31'"),
    ("""
     ota:
       password: x
     """, "1:1: missing esphome: block with the node's name"),
    ("""
     esphome: [
     """, "2:1: not valid YAML: did not find expected node content while parsing a flow node"),
    ("", "the file is empty: expected a node configuration with esphome: (name) and ota:"),
    ("""
     - just
     - a list
     """, "1:1: a node configuration must be a mapping of components (esphome:, ota:, ...), not "
          "a list"),
    ("""
     esphome:
       name: x
     host:
     update:
       - platform: http_request
         update_interval: 1h
     """, "5:5: update (platform: http_request) needs source: the URL of the manifest.json "
          "that 'ota publish' wrote"),
    ("""
     esphome:
       name: x
     host:
     update:
       - platform: http_request
         source: ftp://h/manifest.json
     """, "6:13: source 'ftp://h/manifest.json' is not an http:// or https:// URL"),
    ("""
     esphome:
       name: x
     host:
     update:
       - platform: http_request
         source: http://h/a.json
       - platform: http_request
         source: http://h/b.json
     """, "7:5: only one update entry of platform: http_request is supported (the other is "
          "at line 5)"),
    ("""
     esphome:
       name: x
     host:
     update:
       platform: http_request
     """, "5:3: update: takes a list of entries (- platform: http_request ...)"),
]


# Node files in the styles of ESPHome's own tests/components/*/ YAML and of the
# configurations people have: (name, {file: text}, extra `ota config` arguments before
# FILE, expected lines of the output or, as a str, the error after "error: "). The main
# file is node.yaml; {dir} is the folder the files are written to. A secrets.yaml with
# wifi_ssid, ota_password and node_ip: 10.0.0.1 is beside node.yaml unless a case
# writes its own.
ESPHOME_STYLES = [
    ("old esphomeyaml form (the seed's)", {"node.yaml": """
     esphomeyaml:
       name: seed
       platform: ESP8266
       board: nodemcuv2
     wifi:
       ssid: !secret wifi_ssid
       password: !secret ota_password
       manual_ip:
         static_ip: 192.168.1.60
         gateway: 192.168.1.1
         subnet: 255.255.255.0
     ota:
       password: !secret ota_password
     """}, [], ["platform:           esp8266, board nodemcuv2", "ota port:           8266",
                "address:            192.168.1.60 (from wifi: manual_ip)",
                "password:           set (stored on the node as a salted verifier)"]),
    ("current list form, test.esp32-ard.yaml with <<: !include common.yaml", {
        "node.yaml": """
     esphome:
       name: componenttestesp32ard
       friendly_name: Test
     esp32:
       board: nodemcu-32s
       framework:
         type: arduino
     logger:
       level: VERY_VERBOSE
     <<: !include common.yaml
     """, "common.yaml": """
     wifi:
       ssid: MySSID
       password: password1
     ota:
       - platform: esphome
         password: "superlongpasswordthatnoonewillknow"
         port: 3286
         on_begin:
           then:
             - logger.log: "OTA start"
         on_progress:
           then:
             - logger.log:
                 format: "OTA progress %0.1f%%"
                 args: ["x"]
         on_state_change:
           then:
             lambda: >-
               ESP_LOGD("ota", "State %d", state);
     """}, [], ["platform:           esp32, board nodemcu-32s", "ota port:           3286",
                "address:            componenttestesp32ard.local (mDNS)",
                "logger:             on, log viewers on port 3287"]),
    ("components this tool does not read, with !lambda, on rp2040", {"node.yaml": """
     substitutions:
       name: picoproxy
       friendly_name: Pico Proxy
     esphome:
       name: ${name}
       friendly_name: ${friendly_name}
       project:
         name: esphome.bluetooth-proxy
         version: "1.0"
     rp2040:
       board: rpipicow
     wifi:
       ap:
     api:
       encryption:
         key: !secret ota_password
     logger:
     ota:
     improv_serial:
     dashboard_import:
       package_import_url: github://esphome/firmware/bluetooth-proxy/esp32-generic.yaml@main
     homeassistant:
     time:
       - platform: sntp
         id: sntp_time
     i2c:
       sda: GPIO4
       scl: GPIO5
     web_server:
       port: 80
     wiif:
       ssid: typo-but-unknown-components-are-not-ours
     switch:
       - platform: template
         name: Relay
         lambda: !lambda |-
           return id(relay_state);
     sensor:
       - platform: template
         id: pm11
         name: "pm 1.0µm"
         lambda: return 1.0;
       - platform: uptime
         name: Uptime
         filters:
           - lambda: !lambda return x * 2;
     button:
       - platform: safe_mode
         name: Safe Mode Boot
     """}, [], ["name:               picoproxy (host picoproxy.local)",
                "platform:           rp2040, board rpipicow", "ota port:           2040",
                "address:            picoproxy.local (mDNS)"]),
    ("bk72xx platform block", {"node.yaml": """
     esphome:
       name: plug_1
     bk72xx:
       board: generic-bk7231n-qfn32-tuya
     ota:
       - platform: esphome
     """}, [], ["name:               plug_1 (host plug_1.local)",
                "platform:           bk72xx, board generic-bk7231n-qfn32-tuya",
                "ota port:           8892"]),
    ("ESPHome's default ports per platform, and a name with a MAC suffix", {"node.yaml": """
     esphome:
       name: bulb
       name_add_mac_suffix: true
     rtl87xx:
       board: generic-rtl8710bn-2mb-788k
     ota:
       - platform: esphome
     """}, [], ["name:               bulb-<MAC suffix> (name_add_mac_suffix: the host is "
                "bulb-xxxxxx.local, xxxxxx the last 6 hex digits of its MAC)",
                "address:            unknown: the name has a MAC suffix; upload, run and logs "
                "ask mDNS for bulb-xxxxxx (or set wifi: use_address / manual_ip)",
                "ota port:           8892",
                "mdns:               on, answers bulb-xxxxxx.local and advertises _ota._tcp"]),
    ("a MAC suffix with use_address: the address is known", {"node.yaml": """
     esphome:
       name: bulb
       name_add_mac_suffix: true
     esp8266:
       board: d1_mini
     wifi:
       use_address: 10.0.0.77
     ota:
     """}, [], ["address:            10.0.0.77 (from wifi: use_address)",
                "ota port:           8266"]),
    ("substitutions: $name, ${name}, one in another, in a key", {"node.yaml": """
     substitutions:
       devicename: attic
       suffix: "2"
       full: ${devicename}-$suffix
       ota_port: "3400"
       ip: 10.1.1.${suffix}0
     esphome:
       name: $full
     esp32:
       board: esp32dev
     wifi:
       use_address: ${ip}
     ota:
       - platform: esphome
         port: ${ota_port}
     sensor:
       - platform: wifi_signal
         name: ${devicename} WiFi
     """}, [], ["name:               attic-2 (host attic-2.local)", "ota port:           3400",
                "address:            10.1.1.20 (from wifi: use_address)"]),
    ("-s KEY VALUE overrides the file's substitutions", {"node.yaml": """
     substitutions:
       devicename: attic
     esphome:
       name: ${devicename}
       friendly_name: $component_name
     host:
     ota:
       - platform: esphome
         port: $port
     """}, ["-s", "devicename", "cellar", "-s", "port", "3500", "-s", "component_name", "x"],
     ["name:               cellar (host cellar.local)", "ota port:           3500"]),
    ("packages: a dict of name: !include, main file wins, lists concatenate", {
        "node.yaml": """
     packages:
       base: !include common/base.yaml
       wifi: !include common/wifi.yaml
     esphome:
       name: livingroom
     ota:
       - platform: esphome
         port: 3300
     logger:
       port: 4100
     """, "common/base.yaml": """
     esphome:
       name: from-base
       friendly_name: Base
     esp8266:
       board: d1_mini
     logger:
       level: DEBUG
       port: 4000
     ota:
       - platform: esphome
         id: base_ota
         password: !secret ota_password
     """, "common/wifi.yaml": """
     wifi:
       networks:
         - ssid: WiFiFromPackage
           password: password1
           manual_ip:
             static_ip: 10.2.0.9
             gateway: 10.2.0.1
             subnet: 255.255.255.0
     sensor:
       - <<: !include ./uptime_sensor.yaml
     """, "common/uptime_sensor.yaml": """
     platform: uptime
     id: ${devicename}_uptime_pcg
     name: Uptime From Package
     """, "common/secrets.yaml": """
     ota_password: pw-of-the-common-folder
     """}, [], ["name:               livingroom (host livingroom.local)",
                "platform:           esp8266, board d1_mini", "ota id:             base_ota",
                "ota port:           3300",
                "password:           set (stored on the node as a salted verifier)",
                "address:            10.2.0.9 (from wifi: networks: manual_ip)",
                "logger:             on, log viewers on port 4100"]),
    ("not valid YAML in an included file names that file", {"node.yaml": """
     substitutions:
       octet: "44"
     esphome:
       name: ${name}
     esp32:
       board: esp32dev
     wifi: !include
       file: includes/wifi.yaml
       vars:
         ssid: my_custom_ssid
         net: 192.168.7
     ota: !include {file: includes/ota.yaml, vars: {port: 3232}}
     """, "includes/wifi.yaml": """
     ssid: ${ssid}
     manual_ip:
       static_ip: ${net}.${octet}
       gateway: ${net}.1
       subnet: 255.255.255.0
     """, "includes/ota.yaml": """
     defaults:
       port: "9999"
       version: "1"
     - platform: esphome
       port: ${port}
       version: ${version}
     """}, ["-s", "name", "porch"], "{dir}/includes/ota.yaml:4:1: not valid YAML: did not "
                                   "find expected key while parsing a block mapping "
                                   "(included from {dir}/node.yaml:12:6)"),
    ("ota: encryption: (ESPHome's encrypted OTA) is tolerated", {"node.yaml": """
     esphome:
       name: porch
     esp32:
       board: esp32dev
     ota:
       - platform: esphome
         password: pw
         encryption:
           key: "0123456789abcdef0123456789abcdef0123456789abc="
     """}, [], ["ota port:           3232",
               "password:           set (stored on the node as a salted verifier)"]),
    ("an error two includes deep names the whole chain", {"node.yaml": """
     esphome:
       name: porch
     esp8266:
       board: d1_mini
     wifi: !include includes/wifi.yaml
     """, "includes/wifi.yaml": """
     ssid: x
     manual_ip: !include ip.yaml
     """, "includes/ip.yaml": """
     static_ip: [10.0.0.1
     """}, [], "{dir}/includes/ip.yaml:2:1: not valid YAML: did not find expected ',' or ']' "
               "while parsing a flow sequence (included from {dir}/includes/wifi.yaml:2:12) "
               "(included from {dir}/node.yaml:5:7)"),
    ("!include of a folder is refused with the tag that reads one", {"node.yaml": """
     esphome:
       name: porch
     esp8266:
       board: d1_mini
     wifi: !include includes
     """, "includes/wifi.yaml": """
     ssid: x
     """}, [], "{dir}/node.yaml:5:7: cannot include {dir}/includes: not a regular file "
               "(a folder: use !include_dir_named or similar)"),
    ("!include {file, vars} and defaults:, a var left to the main substitutions", {"node.yaml": """
     substitutions:
       octet: "44"
     esphome:
       name: ${name}
     esp32:
       board: esp32dev
     wifi: !include
       file: includes/wifi.yaml
       vars:
         ssid: my_custom_ssid
         net: 192.168.7
     ota: !include {file: includes/ota.yaml, vars: {port: 3299}}
     """, "includes/wifi.yaml": """
     ssid: ${ssid}
     manual_ip:
       static_ip: ${net}.${octet}
       gateway: ${net}.1
       subnet: 255.255.255.0
     """, "includes/ota.yaml": """
     defaults:
       port: "9999"
       version: "1"
     platform: esphome
     port: ${port}
     version: ${version}
     """}, ["-s", "name", "porch"],
     ["name:               porch (host porch.local)", "ota port:           3299",
      "protocol version:   1", "address:            192.168.7.44 (from wifi: manual_ip)"]),
    ("!secret in an included file: its own folder's secrets.yaml, else the main one's", {
        "node.yaml": """
     esphome:
       name: shed
     host:
     packages:
       net: !include net/wifi.yaml
       ota: !include other/ota.yaml
     """, "net/wifi.yaml": """
     wifi:
       ssid: !secret wifi_ssid
       use_address: !secret node_ip
     """, "net/secrets.yaml": """
     wifi_ssid: Shed
     node_ip: 10.9.9.9
     """, "other/ota.yaml": """
     ota:
       - platform: esphome
         password: !secret ota_password
     """}, [], ["address:            10.9.9.9 (from wifi: use_address)",
                "password:           set (stored on the node as a salted verifier)"]),
    ("ethernet: manual_ip; a package's wifi: !remove'd, an ota id: !extend'ed", {
        "node.yaml": """
     packages:
       common: !include common.yaml
     esphome:
       name: wired
     esp32:
       board: wt32-eth01
     wifi: !remove
     ethernet:
       type: LAN8720
       mdc_pin: GPIO23
       mdio_pin: GPIO18
       clk_mode: GPIO0_IN
       phy_addr: 1
       manual_ip:
         static_ip: 192.168.178.56
         gateway: 192.168.178.1
         subnet: 255.255.255.0
       domain: .local
     ota:
       - id: !extend common_ota
         port: 3299
     """, "common.yaml": """
     wifi:
       ssid: MySSID
       password: password1
       use_address: 10.0.0.99
     ota:
       - platform: esphome
         id: common_ota
     """}, [], ["address:            192.168.178.56 (from ethernet: manual_ip)",
                "ota id:             common_ota", "ota port:           3299"]),
    ("wifi: use_address wins over manual_ip; ethernet: use_address", {"node.yaml": """
     esphome:
       name: both
     esp32:
     wifi:
       ssid: a
       use_address: both.example.net
       manual_ip:
         static_ip: 10.3.3.3
         gateway: 10.3.3.1
         subnet: 255.255.255.0
     ethernet:
       type: W5500
       use_address: 10.4.4.4
     """}, [], ["address:            both.example.net (from wifi: use_address)"]),
    ("ethernet: use_address alone", {"node.yaml": """
     esphome:
       name: wired2
     esp32:
     ethernet:
       type: W5500
       clk_pin: 19
       mosi_pin: 21
       miso_pin: 23
       cs_pin: 18
       use_address: 10.4.4.4
     """}, [], ["address:            10.4.4.4 (from ethernet: use_address)"]),
    ("wifi: domain other than .local", {"node.yaml": """
     esphome:
       name: lanbox
     esp8266:
       board: d1_mini
     wifi:
       ssid: a
       domain: .lan
     """}, [], ["address:            lanbox.lan (from wifi: domain)"]),
    ("remote package (github:// shorthand)", {"node.yaml": """
     esphome:
       name: x
     host:
     packages:
       proxy: github://esphome/firmware/bluetooth-proxy/esp32-generic.yaml@main
     """}, [], "{dir}/node.yaml:5:10: remote package 'proxy' is not supported offline: "
               "github://esphome/firmware/bluetooth-proxy/esp32-generic.yaml@main (copy the "
               "file next to this one and use proxy: !include FILE)"),
    ("remote package (url: and files:)", {"node.yaml": """
     esphome:
       name: x
     host:
     packages:
       remote_package:
         url: https://github.com/esphome/non-existant-repo
         ref: main
         files: [common.yaml]
         refresh: 1d
     """}, [], "{dir}/node.yaml:6:10: remote package 'remote_package' is not supported "
               "offline: https://github.com/esphome/non-existant-repo (copy the file next to "
               "this one and use remote_package: !include FILE)"),
    ("include loop", {"node.yaml": """
     esphome:
       name: x
     host:
     packages:
       a: !include a.yaml
     """, "a.yaml": """
     wifi: !include b.yaml
     """, "b.yaml": """
     <<: !include a.yaml
     """}, [], "{dir}/b.yaml:1:5: include loop: {dir}/a.yaml is already being read "
               "({dir}/a.yaml -> {dir}/b.yaml -> {dir}/a.yaml) (included from {dir}/a.yaml:1:7) "
               "(included from {dir}/node.yaml:5:6)"),
    ("an include that is missing", {"node.yaml": """
     esphome:
       name: x
     host:
     wifi: !include nosuch.yaml
     """}, [], "{dir}/node.yaml:4:7: cannot include {dir}/nosuch.yaml: No such file or "
               "directory"),
    ("unknown key in a package's ota: names the package file", {"node.yaml": """
     esphome:
       name: x
     host:
     packages:
       ota: !include ota.yaml
     """, "ota.yaml": """
     ota:
       - platform: esphome
         pasword: x
     """}, [], "{dir}/ota.yaml:3:5: unknown key 'pasword' in ota (platform: esphome) (did "
               "you mean 'password'?) (included from {dir}/node.yaml:5:8)"),
    ("unknown key in manual_ip", {"node.yaml": """
     esphome:
       name: x
     host:
     wifi:
       manual_ip:
         static_pi: 10.0.0.5
     """}, [], "{dir}/node.yaml:6:5: unknown key 'static_pi' in wifi manual_ip (did you mean "
               "'static_ip'?)"),
    ("a substitution nobody defined", {"node.yaml": """
     esphome:
       name: ${devicename}
     host:
     """}, [], "{dir}/node.yaml:2:9: name '${{devicename}}' uses the substitution "
               "'devicename', which is not defined (add it under substitutions: or give -s "
               "devicename VALUE)"),
    ("a duplicate key", {"node.yaml": """
     esphome:
       name: x
     host:
     ota:
       port: 1
       port: 2
     """}, [], "{dir}/node.yaml:6:3: duplicate key 'port' (first at line 5)"),
    ("two static IPs in wifi networks without use_address", {"node.yaml": """
     esphome:
       name: x
     host:
     wifi:
       networks:
         - ssid: a
           manual_ip: {static_ip: 10.0.0.5, gateway: 10.0.0.1, subnet: 255.255.255.0}
         - ssid: b
           manual_ip: {static_ip: 10.0.1.5, gateway: 10.0.1.1, subnet: 255.255.255.0}
     """}, [], "{dir}/node.yaml:9:18: wifi networks have two static IPs (10.0.0.5 and "
               "10.0.1.5): set use_address (ESPHome asks for it too)"),
    ("a static_ip that is not an address", {"node.yaml": """
     esphome:
       name: x
     host:
     wifi:
       manual_ip:
         static_ip: 10.0.0.500
         gateway: 10.0.0.1
         subnet: 255.255.255.0
     """}, [], "{dir}/node.yaml:6:16: static_ip must be an IPv4 address such as 192.168.1.50, "
               "not '10.0.0.500'"),
]


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ota-cfg-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])
        with open(os.path.join(self.dir, "secrets.yaml"), "w") as f:
            f.write("ota_password: VERYSECURE\n")

    def write(self, text, name="node.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text).lstrip("\n"))
        return path

    def test_valid_files(self):
        for i, (text, expected) in enumerate(VALID):
            with self.subTest(case=i):
                path = self.write(text)
                rc, out, err = run_ota("config", path)
                self.assertEqual(rc, 0, err)
                for line in expected:
                    self.assertIn(line + "\n", out)
                self.assertNotIn("VERYSECURE", out)
                self.assertNotIn("pw\n", out)

    def test_invalid_files(self):
        for i, (text, expected) in enumerate(INVALID):
            with self.subTest(case=i):
                path = self.write(text)
                rc, out, err = run_ota("config", path)
                self.assertEqual(rc, 7, out)
                self.assertEqual(err.strip(),
                                 "error: %s:%s" % (path, expected.format(dir=self.dir))
                                 if expected[0].isdigit() else "error: %s: %s" % (path, expected))


    def test_esphome_styles(self):
        for name, files, args, expected in ESPHOME_STYLES:
            with self.subTest(case=name):
                d = tempfile.mkdtemp(prefix="esphome-style-", dir=self.dir)
                with open(os.path.join(d, "secrets.yaml"), "w") as f:
                    f.write("wifi_ssid: HomeNet\nota_password: VERYSECURE\n"
                            "node_ip: 10.0.0.1\n")
                for fname, text in files.items():
                    path = os.path.join(d, fname)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "w") as f:
                        f.write(textwrap.dedent(text).lstrip("\n"))
                rc, out, err = run_ota("config", *args, os.path.join(d, "node.yaml"))
                if isinstance(expected, str):
                    self.assertEqual(rc, 7, out)
                    self.assertEqual(err.strip(), "error: " + expected.format(dir=d))
                    continue
                self.assertEqual(rc, 0, err)
                for line in expected:
                    self.assertIn(line + "\n", out)
                for secret in ("VERYSECURE", "pw-of-the-common-folder", "superlong"):
                    self.assertNotIn(secret, out)

    def test_secret_of_the_included_folder_reaches_the_firmware(self):
        """the package's own secrets.yaml gives its password (codegen's legacy_auth
        writes it in clear, so it can be told apart from the main folder's)"""
        os.makedirs(os.path.join(self.dir, "common"))
        self.write("ota:\n  - platform: esphome\n    password: !secret ota_password\n"
                   "    legacy_auth: true\n", "common/ota.yaml")
        self.write("ota_password: pw-of-the-common-folder\n", "common/secrets.yaml")
        path = self.write("esphome:\n  name: x\nhost:\npackages:\n"
                          "  ota: !include common/ota.yaml\n")
        rc, text, err = run_ota("codegen", path)
        self.assertEqual(rc, 0, err)
        self.assertIn('"pw-of-the-common-folder"', text)
        self.assertNotIn("VERYSECURE", text)

    def test_config_substitution_option(self):
        path = self.write("esphome:\n  name: $n\nhost:\n")
        rc, out, err = run_ota("config", "-s", "n", "from-cli", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("name:               from-cli (host from-cli.local)\n", out)
        rc, out, err = run_ota("config", "-s", "n")
        self.assertNotEqual(rc, 0)
        self.assertIn("-s takes KEY VALUE", err)
        rc, out, err = run_ota("config", "-s", "bad-name", "v", path)
        self.assertEqual(rc, 7, out)
        self.assertIn("substitution 'bad-name' given on the command line may contain only "
                      "letters, digits and '_'", err)
        # as ESPHome's CLI: before the command too, and for every command reading the file
        rc, out, err = run_ota("-s", "n", "before", "config", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("name:               before (host before.local)\n", out)
        ota_file = self.write("esphome:\n  name: $n\nhost:\nota:\n  - platform: esphome\n"
                              "    port: ${p}\n", "sub.yaml")
        rc, text, err = run_ota("codegen", "-s", "n", "gen", "-s", "p", "3999", ota_file)
        self.assertEqual(rc, 0, err)
        self.assertIn('#define OTA_NODE_NAME "gen"', text)
        self.assertIn("#define OTA_NODE_PORT 3999", text)
        # upload reads the port from the substituted file: nothing listens there -> exit 3
        # naming that port (what matters: -s reached the upload's file loading)
        img = os.path.join(self.dir, "fw.bin")
        with open(img, "wb") as f:
            f.write(b"\x7fELF" + b"x" * 1000)
        rc, out, err = run_ota("upload", "-s", "n", "up", "-s", "p", "1", ota_file, img,
                               "--device", "127.0.0.1", "--timeout", "3")
        self.assertEqual(rc, 3, err)
        self.assertIn("127.0.0.1", err)
        self.assertIn("port 1", err)

    def test_codegen_compiles_and_holds_no_password(self):
        path = self.write(VALID[0][0])
        out = os.path.join(self.dir, "settings.h")
        rc, _, err = run_ota("codegen", path, "-o", out)
        self.assertEqual(rc, 0, err)
        text = open(out).read()
        self.assertNotIn("VERYSECURE", text)
        self.assertIn('#define OTA_NODE_VERIFIER "SCRAM-SHA-256$10000:', text)
        self.assertIn("#define OTA_NODE_LEGACY_PASSWORD NULL", text)
        src = os.path.join(self.dir, "use.c")
        with open(src, "w") as f:
            f.write('#include <stddef.h>\n#include "settings.h"\n'
                    'int main(void) { return OTA_NODE_PORT == 3232 && OTA_NODE_VERIFIER != NULL'
                    ' ? 0 : 1; }\n')
        subprocess.run(["cc", "-Wall", "-Werror", "-I", self.dir, src, "-o", src + ".bin"],
                       check=True)
        self.assertEqual(subprocess.run([src + ".bin"]).returncode, 0)
        # legacy_auth writes the plain password, and says so
        legacy = self.write(VALID[3][0], "legacy.yaml")
        rc, text, err = run_ota("codegen", legacy)
        self.assertEqual(rc, 0, err)
        self.assertIn("legacy_auth puts the plain OTA password into the firmware", err)
        self.assertIn('"pw"', text)
        self.assertIn("#define OTA_NODE_MDNS 1", text)
        # mdns: disabled: true reaches the firmware
        quiet = self.write(next(y for y, _ in VALID if "mdns:\n       disabled: true" in y), "quiet.yaml")
        rc, text, err = run_ota("codegen", quiet)
        self.assertEqual(rc, 0, err)
        self.assertIn("#define OTA_NODE_MDNS 0", text)
        self.assertIn("#define OTA_NODE_UPDATE_URL NULL", text)
        # update: platform: http_request reaches the firmware
        puller = self.write(next(y for y, _ in VALID if "update_interval: 30min" in y),
                            "puller.yaml")
        rc, text, err = run_ota("codegen", puller)
        self.assertEqual(rc, 0, err)
        self.assertIn('#define OTA_NODE_UPDATE_URL "https://updates.example.com/fw/manifest.json"',
                      text)
        self.assertIn("#define OTA_NODE_UPDATE_INTERVAL_MS 1800000u", text)


if __name__ == "__main__":
    unittest.main()
