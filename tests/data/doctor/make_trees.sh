#!/bin/bash
# Regenerates the fake sysfs/proc trees of the doctor tests (committed; run from this directory).
# Layout as on a real host: /sys/bus/usb/devices/NAME are symlinks to the device directories under
# /sys/devices/pciDOMAIN/CONTROLLER/usbN/..., which is how the doctor finds each device's controller.
set -euo pipefail
cd "$(dirname "$0")"

usbdev() { # tree controller bus path vendor product speed [serial]
  local tree=$1 ctl=$2 bus=$3 path=$4 vid=$5 pid=$6 speed=$7 serial=${8:-}
  local dir="$tree/sys/devices/pci0000:00/$ctl/usb$bus/$path"
  mkdir -p "$dir"
  echo "$vid" > "$dir/idVendor"; echo "$pid" > "$dir/idProduct"
  echo "$speed" > "$dir/speed"; echo "$bus" > "$dir/busnum"
  [ -n "$serial" ] && echo "$serial" > "$dir/serial"
  mkdir -p "$tree/sys/bus/usb/devices"
  ln -sfn "../../../devices/pci0000:00/$ctl/usb$bus/$path" "$tree/sys/bus/usb/devices/$(basename "$path")"
}

# An Azure Kinect as it enumerates: USB 3 hub 097a with depth 097c and color 097d behind it, USB 2 hub
# 097b with the microphone array 097e.
kinect() { # tree controller bus3 bus2 port serial [speed]
  local tree=$1 ctl=$2 b3=$3 b2=$4 port=$5 serial=$6 speed=${7:-5000}
  usbdev "$tree" "$ctl" "$b3" "$b3-$port" 045e 097a "$speed"
  usbdev "$tree" "$ctl" "$b3" "$b3-$port/$b3-$port.1" 045e 097c "$speed" "$serial"
  usbdev "$tree" "$ctl" "$b3" "$b3-$port/$b3-$port.2" 045e 097d "$speed"
  mkdir -p "$tree/sys/devices/pci0000:00/$ctl/usb$b3/$b3-$port/$b3-$port.1/$b3-$port.1:1.0"
  echo 0e > "$tree/sys/devices/pci0000:00/$ctl/usb$b3/$b3-$port/$b3-$port.1/$b3-$port.1:1.0/bInterfaceClass"
  ln -sfn "../../../devices/pci0000:00/$ctl/usb$b3/$b3-$port/$b3-$port.1/$b3-$port.1:1.0" \
    "$tree/sys/bus/usb/devices/$b3-$port.1:1.0"
  usbdev "$tree" "$ctl" "$b2" "$b2-$port" 045e 097b 480
  usbdev "$tree" "$ctl" "$b2" "$b2-$port/$b2-$port.1" 045e 097e 480
}

proc() { # tree pid comm
  mkdir -p "$1/proc/$2"; echo "$3" > "$1/proc/$2/comm"
}

rm -rf good bad empty timesyncd warn

# good: two Azure Kinects on two controllers, usbfs 64 MB, chrony + PTP running and synchronised.
kinect good 0000:00:14.0 2 1 1 000001112912
kinect good 0000:03:00.0 4 3 1 000002112912
usbdev good 0000:00:14.0 1 1-4 046d c52b 12   # a mouse: ignored
mkdir -p good/sys/module/usbcore/parameters; echo 64 > good/sys/module/usbcore/parameters/usbfs_memory_mb
proc good 1 systemd; proc good 812 chronyd; proc good 900 ptp4l; proc good 901 phc2sys
mkdir -p good/proc/self; echo kinsync > good/proc/self/comm   # not a pid: skipped
mkdir -p good/commands
cat > good/commands/chronyc-tracking <<'T'
Reference ID    : C0A80101 (192.168.1.1)
Stratum         : 2
Ref time (UTC)  : Mon Nov 23 21:00:00 2026
System time     : 0.000004000 seconds slow of NTP time
Last offset     : -0.000001200 seconds
RMS offset      : 0.000003100 seconds
Frequency       : 12.345 ppm slow
Residual freq   : +0.001 ppm
Skew            : 0.012 ppm
Root delay      : 0.000210000 seconds
Root dispersion : 0.000030000 seconds
Update interval : 16.1 seconds
Leap status     : Normal
T
cat > good/commands/pmc-time-status <<'T'
sending: GET TIME_STATUS_NP
	001122.fffe.334455-1 seq 0 RESPONSE MANAGEMENT TIME_STATUS_NP
		master_offset              -23
		ingress_time               1795467600000000000
		cumulativeScaledRateOffset +0.000000000
		scaledLastGmPhaseChange    0
		gmTimeBaseIndicator        0
		lastGmPhaseChange          0x0000'0000000000000000.0000
		gmPresent                  true
		gmIdentity                 001122.fffe.334400
T

# bad: usbfs 16 MB for 4 cameras; two Kinects share 0000:00:14.0, one runs at USB 2 speed on
# 0000:05:00.0, a Femto Bolt on 0000:06:00.0; chrony unsynchronised, ptp4l without phc2sys 25 ms off.
kinect bad 0000:00:14.0 2 1 1 000001112912
kinect bad 0000:00:14.0 2 1 2 000002112912
kinect bad 0000:05:00.0 3 4 1 000003112912 480
usbdev bad 0000:06:00.0 5 5-1 2bc5 066b 5000 CL8F0000001
mkdir -p bad/sys/module/usbcore/parameters; echo 16 > bad/sys/module/usbcore/parameters/usbfs_memory_mb
proc bad 1 systemd; proc bad 700 chronyd; proc bad 701 ptp4l
mkdir -p bad/commands
sed -e 's/^Leap status .*/Leap status     : Not synchronised/' good/commands/chronyc-tracking > bad/commands/chronyc-tracking
sed -e 's/master_offset  *-23/master_offset              25000000/' good/commands/pmc-time-status > bad/commands/pmc-time-status

# empty: no usbcore module dir, no cameras, no clock daemon.
mkdir -p empty/sys/bus/usb/devices; touch empty/sys/bus/usb/devices/.keep
proc empty 1 systemd

# timesyncd: only systemd-timesyncd keeps the clock; chrony offset 250 us fast in commands-warn.
proc timesyncd 1 systemd; proc timesyncd 310 systemd-timesyn
mkdir -p warn/commands
sed -e 's/^System time .*/System time     : 0.000250000 seconds fast of NTP time/' good/commands/chronyc-tracking > warn/commands/chronyc-tracking
proc warn 812 chronyd
