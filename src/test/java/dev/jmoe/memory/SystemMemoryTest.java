package dev.jmoe.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The memory a process may use, read from fake /proc and /sys trees for each cgroup layout. */
class SystemMemoryTest {
    private static final long MIB = 1L << 20;
    @TempDir Path root;

    private void file(String path, String content) throws IOException {
        Path p = root.resolve(path);
        Files.createDirectories(p.getParent());
        Files.writeString(p, content);
    }

    private void meminfo(long availableMib, long selfAnonMib) throws IOException {
        file("proc/meminfo", "MemTotal:       25165824 kB\nMemFree:         1000000 kB\nMemAvailable:   " + availableMib * 1024 + " kB\n");
        file("proc/self/status", "Name:\tjava\nVmRSS:\t" + (selfAnonMib + 30) * 1024 + " kB\nRssAnon:\t" + selfAnonMib * 1024 + " kB\nRssFile:\t30720 kB\nRssShmem:\t0 kB\n");
    }

    @Test
    void cgroupV2LimitLessUsageNotCountingInactiveFilePlusOwnMemory() throws IOException {
        meminfo(8192, 50);
        file("proc/self/cgroup", "0::/user.slice/app\n");
        file("proc/self/mountinfo", "31 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n");
        file("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
        file("sys/fs/cgroup/user.slice/memory.max", "max\n");
        file("sys/fs/cgroup/user.slice/memory.current", "900000000\n");
        file("sys/fs/cgroup/user.slice/app/memory.max", Long.toString(400 * MIB) + "\n");
        file("sys/fs/cgroup/user.slice/app/memory.high", "max\n");
        file("sys/fs/cgroup/user.slice/app/memory.current", Long.toString(100 * MIB) + "\n");
        file("sys/fs/cgroup/user.slice/app/memory.stat", "anon 52428800\nfile 52428800\ninactive_file " + 20 * MIB + "\nactive_file 1000\n");
        SystemMemory m = SystemMemory.probe(root);
        assertEquals(400 * MIB, m.cgroupLimit());
        assertEquals(320 * MIB, m.cgroupRoom()); // 400 - (100 - 20 inactive)
        assertEquals(50 * MIB, m.selfBytes());
        assertEquals(370 * MIB, m.available()); // the process's own 50 MiB are its to plan with
        assertTrue(m.source().contains("cgroup v2 /user.slice/app"), m.source());
        assertTrue(m.source().contains("400.0 MiB"), m.source());
    }

    @Test
    void aTighterParentCgroupBounds() throws IOException {
        meminfo(8192, 0);
        file("proc/self/cgroup", "0::/box/app\n");
        file("sys/fs/cgroup/cgroup.controllers", "memory\n");
        file("sys/fs/cgroup/box/memory.max", Long.toString(300 * MIB));
        file("sys/fs/cgroup/box/memory.current", Long.toString(60 * MIB));
        file("sys/fs/cgroup/box/app/memory.max", Long.toString(1024 * MIB));
        file("sys/fs/cgroup/box/app/memory.current", Long.toString(10 * MIB));
        SystemMemory m = SystemMemory.probe(root); // no mountinfo: the usual mount point
        assertEquals(300 * MIB, m.cgroupLimit());
        assertEquals(240 * MIB, m.cgroupRoom());
        assertTrue(m.source().contains("cgroup v2 /box limit 300.0 MiB"), m.source());
    }

    @Test
    void memoryHighCountsAsALimitToo() throws IOException {
        meminfo(8192, 0);
        file("proc/self/cgroup", "0::/app\n");
        file("sys/fs/cgroup/cgroup.controllers", "memory\n");
        file("sys/fs/cgroup/app/memory.max", "max");
        file("sys/fs/cgroup/app/memory.high", Long.toString(200 * MIB));
        file("sys/fs/cgroup/app/memory.current", "0");
        assertEquals(200 * MIB, SystemMemory.probe(root).available());
    }

    @Test
    void cgroupV1MemoryControllerWithHierarchicalInactiveFile() throws IOException {
        meminfo(8192, 10);
        file("proc/self/cgroup", "9:name=systemd:/\n4:memory:/process_api/abc\n3:cpuset:/\n0::/\n");
        file("proc/self/mountinfo", "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n35 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                + "40 31 0:35 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
        file("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
        file("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
        file("sys/fs/cgroup/memory/memory.usage_in_bytes", "3000000000\n");
        file("sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "9223372036854771712\n");
        file("sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "399998976\n");
        file("sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes", Long.toString(150 * MIB));
        file("sys/fs/cgroup/memory/process_api/abc/memory.stat", "cache 1\nrss 2\ninactive_file 1\ntotal_inactive_file " + 100 * MIB + "\n");
        SystemMemory m = SystemMemory.probe(root);
        assertEquals(399998976L, m.cgroupLimit());
        assertEquals(399998976L - 50 * MIB, m.cgroupRoom());
        assertEquals(399998976L - 40 * MIB, m.available());
        assertTrue(m.source().startsWith("cgroup v1 /process_api/abc"), m.source());
    }

    @Test
    void aContainerMountStartingBelowTheHostRootIsItsOwnCgroup() throws IOException {
        meminfo(8192, 0);
        file("proc/self/cgroup", "5:memory:/docker/0123abcd\n");
        file("proc/self/mountinfo", "35 31 0:31 /docker/0123abcd /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n");
        file("sys/fs/cgroup/memory/memory.limit_in_bytes", Long.toString(512 * MIB));
        file("sys/fs/cgroup/memory/memory.usage_in_bytes", Long.toString(12 * MIB));
        SystemMemory m = SystemMemory.probe(root);
        assertEquals(512 * MIB, m.cgroupLimit());
        assertEquals(500 * MIB, m.available());
    }

    @Test
    void memAvailableBoundsWhenLowerThanTheCgroupRoom() throws IOException {
        meminfo(300, 20);
        file("proc/self/cgroup", "0::/app\n");
        file("sys/fs/cgroup/cgroup.controllers", "memory\n");
        file("sys/fs/cgroup/app/memory.max", Long.toString(2048 * MIB));
        file("sys/fs/cgroup/app/memory.current", "0");
        SystemMemory m = SystemMemory.probe(root);
        assertEquals(320 * MIB, m.available());
        assertTrue(m.source().startsWith("MemAvailable 300.0 MiB"), m.source());
    }

    @Test
    void withoutAnyCgroupMemAvailableAlone() throws IOException {
        meminfo(1024, 0);
        SystemMemory m = SystemMemory.probe(root);
        assertEquals(Long.MAX_VALUE, m.cgroupLimit());
        assertNull(m.cgroup());
        assertEquals(1024 * MIB, m.available());
    }

    @Test
    void theFigureBinJmoeHandsOverIsUsedAsIs() {
        String before = System.getProperty(SystemMemory.AVAILABLE_PROPERTY), src = System.getProperty(SystemMemory.SOURCE_PROPERTY);
        try {
            System.setProperty(SystemMemory.AVAILABLE_PROPERTY, "123456789");
            System.setProperty(SystemMemory.SOURCE_PROPERTY, "cgroup v2 /x limit 1 MiB");
            SystemMemory.Figure f = SystemMemory.forThisProcess();
            assertEquals(123456789L, f.available());
            assertEquals("cgroup v2 /x limit 1 MiB", f.source());
        } finally {
            if (before == null) System.clearProperty(SystemMemory.AVAILABLE_PROPERTY); else System.setProperty(SystemMemory.AVAILABLE_PROPERTY, before);
            if (src == null) System.clearProperty(SystemMemory.SOURCE_PROPERTY); else System.setProperty(SystemMemory.SOURCE_PROPERTY, src);
        }
    }
}
