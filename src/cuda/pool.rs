//! The device memory pool that stream-ordered allocations come from.
//!
//! cudarc allocates with `cuMemAllocAsync`, from the device's current memory
//! pool (the default pool unless something replaced it): every buffer this
//! crate allocates (the training path's saved pre-activations, its `[M, 2N]`
//! gradient scratch, the baselines' intermediate) and those a caller
//! allocates through cudarc's stream. The driver's default release
//! threshold of that pool is 0: at every synchronization the pool returns
//! its freed memory to the driver, and the next allocation maps it afresh.
//! A training loop that allocates the same sizes every step can keep them
//! instead, as a framework's caching allocator does.

use super::CudaGlu;
use crate::error::Result;
use cudarc::driver::result::{device, mem_pool};
use cudarc::driver::sys::{self, CUmemPool_attribute};

/// Use of the device's memory pool ([`CudaGlu::pool_usage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolUsage {
    /// Bytes of the pool's memory in use by allocations now.
    pub used: u64,
    /// The most bytes in use at once since the pool was created or
    /// [`CudaGlu::reset_pool_peak`].
    pub used_peak: u64,
    /// Bytes the pool holds from the driver now (in use or kept after a
    /// free, below the release threshold).
    pub reserved: u64,
}

impl CudaGlu {
    /// The current memory pool of this handle's device.
    fn pool(&self) -> Result<sys::CUmemoryPool> {
        self.ctx.bind_to_thread()?;
        // SAFETY: FFI; the device handle comes from cudarc's context.
        Ok(unsafe { device::get_mem_pool(self.ctx.cu_device()) }?)
    }

    fn pool_attr(&self, attr: CUmemPool_attribute) -> Result<u64> {
        let pool = self.pool()?;
        let mut v: u64 = 0;
        // SAFETY: the attributes read here (release threshold, reserved and
        // used memory, current and high) are cuuint64_t; `v` outlives the
        // call; `pool` is the device's current pool.
        unsafe { mem_pool::get_attribute(pool, attr, (&mut v as *mut u64).cast()) }?;
        Ok(v)
    }

    fn set_pool_attr(&self, attr: CUmemPool_attribute, mut v: u64) -> Result<()> {
        let pool = self.pool()?;
        // SAFETY: as in `pool_attr`; the driver reads one cuuint64_t.
        unsafe { mem_pool::set_attribute(pool, attr, (&mut v as *mut u64).cast()) }?;
        Ok(())
    }

    /// Bytes of freed memory the device's memory pool keeps through a
    /// synchronization instead of returning them to the driver (see
    /// [`CudaGlu::set_pool_release_threshold`]); the driver's default is 0.
    pub fn pool_release_threshold(&self) -> Result<u64> {
        self.pool_attr(CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
    }

    /// Sets how many bytes of freed memory the device's memory pool keeps
    /// through a synchronization (`u64::MAX`: all of it) and returns the
    /// previous setting.
    ///
    /// Every `forward_train` with saved pre-activations allocates `[M, 2N]`
    /// of them and every `backward_into` an `[M, 2N]` gradient scratch;
    /// with the driver's default of 0 the pool gives that memory back at
    /// each synchronization (a training loop reading its loss synchronizes
    /// every step) and maps it again at the next allocation. Raising the
    /// threshold keeps it, as a framework's caching allocator does; the
    /// memory then stays reserved by this process (see
    /// [`CudaGlu::pool_usage`]) until the threshold is lowered again and
    /// the pool next trims at a synchronization. This is a setting of the
    /// device's pool, not of this handle: it applies to every stream-ordered
    /// allocation on the device in this process (cudarc's and candle's
    /// included).
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// let g = CudaGlu::new(0)?;
    /// let before = g.set_pool_release_threshold(u64::MAX)?; // keep freed memory
    /// // ... the training loop ...
    /// g.set_pool_release_threshold(before)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_pool_release_threshold(&self, bytes: u64) -> Result<u64> {
        let prev = self.pool_release_threshold()?;
        self.set_pool_attr(
            CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            bytes,
        )?;
        Ok(prev)
    }

    /// What the device's memory pool holds and has held: the device memory
    /// a training step needs at its peak is `used_peak` after
    /// [`CudaGlu::reset_pool_peak`] and one step (synchronized).
    pub fn pool_usage(&self) -> Result<PoolUsage> {
        Ok(PoolUsage {
            used: self.pool_attr(CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT)?,
            used_peak: self.pool_attr(CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH)?,
            reserved: self.pool_attr(CUmemPool_attribute::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)?,
        })
    }

    /// Restarts [`PoolUsage::used_peak`] from the memory in use now.
    pub fn reset_pool_peak(&self) -> Result<()> {
        // The driver accepts only 0 for the high-water marks: it resets them
        // to the current use.
        self.set_pool_attr(CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH, 0)
    }
}
