#!/bin/busybox sh
# shellcheck shell=dash
# /init of the Ferry lab guest (packed with a static busybox into the initramfs by lab/lab.sh).
#
# Kernel command line words the kernel does not know arrive here as environment variables:
#   fill_mb=N   fill N MiB of RAM (a tmpfs) with non-zero data, so a migration has real work
#   dirty_mb=M  re-write M MiB of that data every second (a guest that keeps dirtying memory)
# Then it prints "GUEST: tick <n>" on the serial console about every second.  lab/lab.sh waits for the
# first tick; tests check that the ticks go on in the destination host's console log.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
FILL=${fill_mb:-0}
DIRTY=${dirty_mb:-0}
[ "$DIRTY" -gt "$FILL" ] && DIRTY=$FILL
echo "GUEST: booted, MemTotal=$(awk '/MemTotal/{print $2}' /proc/meminfo) kB, fill ${FILL} MiB, dirty ${DIRTY} MiB/s"

SEED_MB=1
if [ "$FILL" -gt 0 ]; then
    mount -t tmpfs -o size=$((FILL + 80))m tmpfs /fill
    # 1 MiB from urandom, doubled up to 64 MiB with in-kernel copies (quick even under TCG)
    dd if=/dev/urandom of=/fill/seed bs=1M count=1 2>/dev/null
    while [ "$SEED_MB" -lt 64 ] && [ "$SEED_MB" -lt "$FILL" ]; do
        cat /fill/seed /fill/seed > /fill/seed2 && mv /fill/seed2 /fill/seed
        SEED_MB=$((SEED_MB * 2))
    done
    i=0
    while [ $((i + SEED_MB)) -le "$FILL" ]; do cat /fill/seed; i=$((i + SEED_MB)); done > /fill/blob
    [ "$i" -lt "$FILL" ] && dd if=/fill/seed of=/fill/blob bs=1M count=$((FILL - i)) seek="$i" conv=notrunc 2>/dev/null
fi
echo "GUEST: FILLED ${FILL} MiB"

n=0
pos=0
dirty() {   # re-write $1 MiB of the filled data, moving through it
    left=$1
    while [ "$left" -gt 0 ]; do
        chunk=$left
        [ "$chunk" -gt "$SEED_MB" ] && chunk=$SEED_MB
        [ $((pos + chunk)) -gt "$FILL" ] && pos=0
        dd if=/fill/seed of=/fill/blob bs=1M count="$chunk" seek="$pos" conv=notrunc 2>/dev/null
        pos=$((pos + chunk))
        left=$((left - chunk))
    done
}
while true; do
    n=$((n + 1))
    if [ "$DIRTY" -ge 4 ]; then
        # in four slices a second, so that the dirty rate is steady rather than one burst
        for _ in 1 2 3 4; do dirty $((DIRTY / 4)); usleep 240000; done
    else
        [ "$DIRTY" -gt 0 ] && dirty "$DIRTY"
        sleep 1
    fi
    echo "GUEST: tick $n"
done
