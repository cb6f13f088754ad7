package volume

import (
	"testing"
	"unsafe"
)

// TestIoctlNumbers checks the hand-computed request numbers and struct sizes
// against the values the kernel headers' macros give (linux-libc-dev for
// 6.x, printed with a C program on x86_64; they are the same on every 64-bit
// architecture that uses the generic ioctl encoding).
func TestIoctlNumbers(t *testing.T) {
	if !layoutSupported() {
		t.Skip("btrfs ioctl layout needs a 64-bit platform")
	}
	for _, tc := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"BTRFS_IOC_SNAP_CREATE", iocSnapCreate, 0x50009401},
		{"BTRFS_IOC_SUBVOL_CREATE", iocSubvolCreate, 0x5000940e},
		{"BTRFS_IOC_TREE_SEARCH", iocTreeSearch, 0xd0009411},
		{"BTRFS_IOC_INO_LOOKUP", iocInoLookup, 0xd0009412},
		{"BTRFS_IOC_SNAP_CREATE_V2", iocSnapCreateV2, 0x50009417},
		{"BTRFS_IOC_SUBVOL_CREATE_V2", iocSubvolCreateV2, 0x50009418},
		{"BTRFS_IOC_QUOTA_CTL", iocQuotaCtl, 0xc0109428},
		{"BTRFS_IOC_QGROUP_CREATE", iocQgroupCreate, 0x4010942a},
		{"BTRFS_IOC_QUOTA_RESCAN", iocQuotaRescan, 0x4040942c},
		{"BTRFS_IOC_SNAP_DESTROY_V2", iocSnapDestroyV2, 0x5000943f},
		{"sizeof(struct btrfs_ioctl_vol_args)", unsafe.Sizeof(volArgs{}), 4096},
		{"sizeof(struct btrfs_ioctl_vol_args_v2)", unsafe.Sizeof(volArgsV2{}), 4096},
		{"offsetof(struct btrfs_ioctl_vol_args_v2, name)", unsafe.Offsetof(volArgsV2{}.name), 56},
		{"sizeof(struct btrfs_ioctl_search_key)", unsafe.Sizeof(searchKey{}), 104},
		{"sizeof(struct btrfs_ioctl_search_header)", unsafe.Sizeof(searchHeader{}), 32},
		{"sizeof(struct btrfs_ioctl_search_args)", unsafe.Sizeof(searchArgs{}), 4096},
		{"sizeof(struct btrfs_ioctl_ino_lookup_args)", unsafe.Sizeof(inoLookupArgs{}), 4096},
		{"sizeof(struct btrfs_qgroup_inherit)", unsafe.Sizeof(qgroupInherit{}), 72},
		{"sizeof(struct btrfs_ioctl_quota_rescan_args)", unsafe.Sizeof(quotaRescanArgs{}), 64},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}
