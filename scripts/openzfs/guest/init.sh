#!/bin/busybox sh
# /init of the OpenZFS test guest (scripts/openzfs/vm.sh): load virtio and OpenZFS, unpack the
# input disk into /in, run /in/guest.sh /out, pack /out onto the output disk, power off.
/bin/busybox --install -s /bin 2>/dev/null
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=90% tmpfs /tmp
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
  spl zfs; do
  insmod /modules/$m.ko || echo "guest: insmod $m failed"
done
i=0
while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cd /in && tar -xf /dev/vda
echo "guest: running guest.sh"
status=0
HOME=/root bash /in/guest.sh /out >/dev/ttyS0 2>&1 || status=$?
echo "guest: guest.sh exit status $status"
echo "$status" >/out/.status
sync
tar -C /out -cf /dev/vdb .
sync
poweroff -f
