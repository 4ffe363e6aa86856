//! Bosch BME280 temperature, pressure and humidity sensor on I2C.
//!
//! Written from the datasheet BST-BME280-DS002: register map (section 5.3), compensation in
//! 32-bit integer for temperature and humidity and 64-bit integer for pressure (section 4.2.3).
//! The chip runs in normal mode (it measures continuously at the standby period below), so a
//! read is one burst of the data registers and needs no delay.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use ferry_hal::{Bus, DriverDescriptor, Quantity, Reading, Sensor, Timestamp, Unit};

mod driver;

pub use driver::{Bme280Driver, Params};

/// The registry name of this driver.
pub const NAME: &str = "bme280";
/// Address with SDO tied to GND.
pub const ADDRESS_PRIMARY: u8 = 0x76;
/// Address with SDO tied to VDDIO.
pub const ADDRESS_SECONDARY: u8 = 0x77;
/// What register `id` holds on a BME280 (a BMP280 answers 0x56–0x58).
pub const CHIP_ID: u8 = 0x60;

mod reg {
    pub const CALIB_00: u8 = 0x88; // 26 bytes: T1..T3, P1..P9, (0xA0 unused), H1
    pub const ID: u8 = 0xD0;
    pub const RESET: u8 = 0xE0;
    pub const CALIB_26: u8 = 0xE1; // 7 bytes: H2..H6
    pub const CTRL_HUM: u8 = 0xF2;
    pub const CTRL_MEAS: u8 = 0xF4;
    pub const CONFIG: u8 = 0xF5;
    pub const PRESS_MSB: u8 = 0xF7; // 8 bytes: press[3], temp[3], hum[2]
}

/// Writing this to `reset` performs a power-on reset.
const SOFT_RESET: u8 = 0xB6;
/// Oversampling ×1 for humidity (`ctrl_hum.osrs_h = 001`).
const CTRL_HUM_OSRS_X1: u8 = 0b001;
/// `ctrl_meas`: osrs_t = ×1 (bits 7:5), osrs_p = ×1 (bits 4:2), mode = normal (bits 1:0 = 11).
const CTRL_MEAS_NORMAL_X1: u8 = (0b001 << 5) | (0b001 << 2) | 0b11;
/// `config`: t_sb = 1000 ms (bits 7:5 = 101), filter off, no 3-wire SPI.
const CONFIG_STANDBY_1000MS: u8 = 0b101 << 5;
/// The value the ADC reports for a measurement that was skipped (or not yet made).
const ADC_SKIPPED_20BIT: i32 = 0x80000;

/// What can go wrong talking to a BME280.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The bus failed.
    Bus(E),
    /// The chip at this address is not a BME280.
    WrongChipId(u8),
    /// The chip has not completed its first measurement yet.
    NotReady,
}

impl<E: core::fmt::Debug> core::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "i2c: {e:?}"),
            Error::WrongChipId(id) => write!(
                f,
                "chip id 0x{id:02x} at register 0xd0, expected 0x{CHIP_ID:02x} (BME280); wrong address, or a BMP280?"
            ),
            Error::NotReady => f.write_str("no measurement yet"),
        }
    }
}

/// Factory calibration, read once from the chip's NVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct Calibration {
    pub t1: u16,
    pub t2: i16,
    pub t3: i16,
    pub p1: u16,
    pub p2: i16,
    pub p3: i16,
    pub p4: i16,
    pub p5: i16,
    pub p6: i16,
    pub p7: i16,
    pub p8: i16,
    pub p9: i16,
    pub h1: u8,
    pub h2: i16,
    pub h3: u8,
    pub h4: i16,
    pub h5: i16,
    pub h6: i8,
}

impl Calibration {
    /// Decodes `calib00..calib25` (0x88..0xA1) and `calib26..calib32` (0xE1..0xE7), per the
    /// datasheet's table 16. H4 and H5 share the nibbles of 0xE5.
    pub fn from_registers(a: &[u8; 26], b: &[u8; 7]) -> Self {
        let u = |i: usize| u16::from_le_bytes([a[i], a[i + 1]]);
        let s = |i: usize| i16::from_le_bytes([a[i], a[i + 1]]);
        Calibration {
            t1: u(0),
            t2: s(2),
            t3: s(4),
            p1: u(6),
            p2: s(8),
            p3: s(10),
            p4: s(12),
            p5: s(14),
            p6: s(16),
            p7: s(18),
            p8: s(20),
            p9: s(22),
            h1: a[25],
            h2: i16::from_le_bytes([b[0], b[1]]),
            h3: b[2],
            h4: (i16::from(b[3] as i8) << 4) | i16::from(b[4] & 0x0F),
            h5: (i16::from(b[5] as i8) << 4) | i16::from(b[4] >> 4),
            h6: b[6] as i8,
        }
    }

    /// Temperature in 0.01 °C and `t_fine` (datasheet `BME280_compensate_T_int32`).
    pub fn compensate_temperature(&self, adc_t: i32) -> (i32, i32) {
        let t1 = i32::from(self.t1);
        let var1 = (((adc_t >> 3) - (t1 << 1)) * i32::from(self.t2)) >> 11;
        let d = (adc_t >> 4) - t1;
        let var2 = (((d * d) >> 12) * i32::from(self.t3)) >> 14;
        let t_fine = var1 + var2;
        ((t_fine * 5 + 128) >> 8, t_fine)
    }

    /// Pressure in Pa as Q24.8 (datasheet `BME280_compensate_P_int64`).
    pub fn compensate_pressure(&self, adc_p: i32, t_fine: i32) -> u32 {
        let mut var1 = i64::from(t_fine) - 128_000;
        let mut var2 = var1 * var1 * i64::from(self.p6);
        var2 += (var1 * i64::from(self.p5)) << 17;
        var2 += i64::from(self.p4) << 35;
        var1 = ((var1 * var1 * i64::from(self.p3)) >> 8) + ((var1 * i64::from(self.p2)) << 12);
        var1 = (((1i64 << 47) + var1) * i64::from(self.p1)) >> 33;
        if var1 == 0 {
            return 0; // avoid a division by zero, as the datasheet does
        }
        let mut p: i64 = 1_048_576 - i64::from(adc_p);
        p = (((p << 31) - var2) * 3125) / var1;
        var1 = (i64::from(self.p9) * (p >> 13) * (p >> 13)) >> 25;
        var2 = (i64::from(self.p8) * p) >> 19;
        p = ((p + var1 + var2) >> 8) + (i64::from(self.p7) << 4);
        p as u32
    }

    /// Relative humidity in %RH as Q22.10 (datasheet `bme280_compensate_H_int32`).
    pub fn compensate_humidity(&self, adc_h: i32, t_fine: i32) -> u32 {
        let mut v = t_fine - 76_800;
        v = ((((adc_h << 14) - (i32::from(self.h4) << 20) - (i32::from(self.h5) * v)) + 16_384)
            >> 15)
            * (((((((v * i32::from(self.h6)) >> 10)
                * (((v * i32::from(self.h3)) >> 11) + 32_768))
                >> 10)
                + 2_097_152)
                * i32::from(self.h2)
                + 8_192)
                >> 14);
        v -= ((((v >> 15) * (v >> 15)) >> 7) * i32::from(self.h1)) >> 4;
        v = v.clamp(0, 419_430_400);
        (v >> 12) as u32
    }
}

/// A BME280 on an I2C bus.
pub struct Bme280<I2C> {
    i2c: I2C,
    address: u8,
    calibration: Calibration,
    descriptor: DriverDescriptor,
}

impl<I2C: I2c> Bme280<I2C> {
    /// Checks the chip id, resets the chip, reads its calibration and starts normal mode.
    /// `bus` is the bus number, for the descriptor only.
    pub fn new(
        mut i2c: I2C,
        bus: u8,
        address: u8,
        delay: &mut impl DelayNs,
    ) -> Result<Self, Error<I2C::Error>> {
        let id = read_chip_id(&mut i2c, address)?;
        if id != CHIP_ID {
            return Err(Error::WrongChipId(id));
        }
        i2c.write(address, &[reg::RESET, SOFT_RESET]).map_err(Error::Bus)?;
        delay.delay_ms(2); // start-up time after reset, datasheet table 1
        let mut a = [0u8; 26];
        i2c.write_read(address, &[reg::CALIB_00], &mut a).map_err(Error::Bus)?;
        let mut b = [0u8; 7];
        i2c.write_read(address, &[reg::CALIB_26], &mut b).map_err(Error::Bus)?;
        // ctrl_hum only takes effect after a write to ctrl_meas, so it goes first.
        i2c.write(address, &[reg::CTRL_HUM, CTRL_HUM_OSRS_X1]).map_err(Error::Bus)?;
        i2c.write(address, &[reg::CONFIG, CONFIG_STANDBY_1000MS]).map_err(Error::Bus)?;
        i2c.write(address, &[reg::CTRL_MEAS, CTRL_MEAS_NORMAL_X1]).map_err(Error::Bus)?;
        Ok(Bme280 {
            i2c,
            address,
            calibration: Calibration::from_registers(&a, &b),
            descriptor: DriverDescriptor::new(
                NAME,
                Bus::I2c { bus, address },
                &[Quantity::Temperature, Quantity::Pressure, Quantity::Humidity],
            ),
        })
    }

    /// The calibration read at start-up.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Hands the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    /// Reads the raw ADC values `(adc_t, adc_p, adc_h)`.
    pub fn read_raw(&mut self) -> Result<(i32, i32, i32), Error<I2C::Error>> {
        let mut d = [0u8; 8];
        self.i2c.write_read(self.address, &[reg::PRESS_MSB], &mut d).map_err(Error::Bus)?;
        let adc20 = |m: u8, l: u8, x: u8| (i32::from(m) << 12) | (i32::from(l) << 4) | (i32::from(x) >> 4);
        let adc_p = adc20(d[0], d[1], d[2]);
        let adc_t = adc20(d[3], d[4], d[5]);
        let adc_h = (i32::from(d[6]) << 8) | i32::from(d[7]);
        if adc_t == ADC_SKIPPED_20BIT {
            return Err(Error::NotReady);
        }
        Ok((adc_t, adc_p, adc_h))
    }
}

/// Reads register `id` (0xD0) at `address`: the check that a BME280 is where the config says.
pub fn read_chip_id<I2C: I2c>(i2c: &mut I2C, address: u8) -> Result<u8, Error<I2C::Error>> {
    let mut id = [0u8];
    i2c.write_read(address, &[reg::ID], &mut id).map_err(Error::Bus)?;
    Ok(id[0])
}

impl<I2C: I2c> Sensor for Bme280<I2C> {
    type Error = Error<I2C::Error>;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    fn read(&mut self, now: Timestamp) -> Result<Reading, Self::Error> {
        let (adc_t, adc_p, adc_h) = self.read_raw()?;
        let c = &self.calibration;
        let (t, t_fine) = c.compensate_temperature(adc_t);
        let p = c.compensate_pressure(adc_p, t_fine);
        let h = c.compensate_humidity(adc_h, t_fine);
        let mut r = Reading::new(now);
        r.push(Quantity::Temperature, "", f64::from(t) / 100.0, Unit::Celsius);
        r.push(Quantity::Pressure, "", f64::from(p) / 256.0, Unit::Pascal);
        r.push(Quantity::Humidity, "", f64::from(h) / 1024.0, Unit::Percent);
        Ok(r)
    }
}
