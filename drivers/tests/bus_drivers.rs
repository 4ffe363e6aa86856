//! Bus drivers against embedded-hal-mock: the exact transactions, register constants written
//! again here from the datasheets so that a wrong constant in a driver is caught.

use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinT};
use embedded_hal_mock::eh1::i2c::{Mock as I2cMock, Transaction as I2cT};
use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as SpiT};
use ferry_drivers::bus::ads1115::{Ads1115, FullScale};
use ferry_drivers::bus::bme280::{self, Bme280, Calibration};
use ferry_drivers::bus::gpio::{GpioInput, GpioOutput};
use ferry_drivers::bus::mcp3008::Mcp3008;
use ferry_hal::{Quantity, Sensor, Timestamp};

// BME280, BST-BME280-DS002 section 5.3.
const BME_ADDR: u8 = 0x76;
const BME_ID: u8 = 0xD0;
const BME_CHIP_ID: u8 = 0x60;
const BME_RESET: u8 = 0xE0;
const BME_CALIB00: u8 = 0x88;
const BME_CALIB26: u8 = 0xE1;
const BME_CTRL_HUM: u8 = 0xF2;
const BME_CTRL_MEAS: u8 = 0xF4;
const BME_CONFIG: u8 = 0xF5;
const BME_PRESS_MSB: u8 = 0xF7;

/// The worked example of the Bosch datasheets (BMP280 DS001 section 3.12, whose temperature and
/// pressure formulas the BME280 shares): calibration, raw ADC values, and the results.
const T: (u16, i16, i16) = (27504, 26435, -1000);
const P: (u16, i16, i16, i16, i16, i16, i16, i16, i16) = (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000);
const ADC_T: i32 = 519_888;
const ADC_P: i32 = 415_148;
/// Humidity calibration of a real BME280 (H4/H5 packed in nibbles as the chip stores them).
const H: (u8, i16, u8, i16, i16, i8) = (75, 362, 0, 313, 50, 30);
const ADC_H: i32 = 30_000;

fn calib_bytes() -> ([u8; 26], [u8; 7]) {
    let mut a = [0u8; 26];
    let words: [u16; 12] = [
        T.0, T.1 as u16, T.2 as u16, P.0, P.1 as u16, P.2 as u16, P.3 as u16, P.4 as u16, P.5 as u16, P.6 as u16,
        P.7 as u16, P.8 as u16,
    ];
    for (i, w) in words.iter().enumerate() {
        a[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
    }
    a[25] = H.0;
    let h2 = H.1.to_le_bytes();
    let b = [
        h2[0],
        h2[1],
        H.2,
        (H.3 >> 4) as u8,
        ((H.3 & 0x0F) as u8) | (((H.4 & 0x0F) as u8) << 4),
        (H.4 >> 4) as u8,
        H.5 as u8,
    ];
    (a, b)
}

fn data_bytes() -> Vec<u8> {
    let p = ADC_P as u32;
    let t = ADC_T as u32;
    vec![
        (p >> 12) as u8,
        (p >> 4) as u8,
        ((p & 0xF) << 4) as u8,
        (t >> 12) as u8,
        (t >> 4) as u8,
        ((t & 0xF) << 4) as u8,
        (ADC_H >> 8) as u8,
        ADC_H as u8,
    ]
}

fn bme_init_transactions() -> Vec<I2cT> {
    let (a, b) = calib_bytes();
    vec![
        I2cT::write_read(BME_ADDR, vec![BME_ID], vec![BME_CHIP_ID]),
        I2cT::write(BME_ADDR, vec![BME_RESET, 0xB6]),
        I2cT::write_read(BME_ADDR, vec![BME_CALIB00], a.to_vec()),
        I2cT::write_read(BME_ADDR, vec![BME_CALIB26], b.to_vec()),
        // osrs_h x1 first: it only takes effect on the following ctrl_meas write.
        I2cT::write(BME_ADDR, vec![BME_CTRL_HUM, 0b001]),
        // t_sb 1000 ms (101), filter off.
        I2cT::write(BME_ADDR, vec![BME_CONFIG, 0b1010_0000]),
        // osrs_t x1 (001), osrs_p x1 (001), normal mode (11).
        I2cT::write(BME_ADDR, vec![BME_CTRL_MEAS, 0b0010_0111]),
    ]
}

/// The datasheet's floating-point humidity formula (section 8.1), to cross-check the integer one.
fn humidity_double(adc_h: f64, t_fine: f64) -> f64 {
    let (h1, h2, h3, h4, h5, h6) = (H.0 as f64, H.1 as f64, H.2 as f64, H.3 as f64, H.4 as f64, H.5 as f64);
    let mut v = t_fine - 76800.0;
    v = (adc_h - (h4 * 64.0 + h5 / 16384.0 * v)) * (h2 / 65536.0 * (1.0 + h6 / 67108864.0 * v * (1.0 + h3 / 67108864.0 * v)));
    v *= 1.0 - h1 * v / 524288.0;
    v.clamp(0.0, 100.0)
}

#[test]
fn bme280_compensation_matches_the_datasheet_worked_example() {
    let (a, b) = calib_bytes();
    let c = Calibration::from_registers(&a, &b);
    assert_eq!((c.t1, c.t2, c.t3), T);
    assert_eq!((c.h1, c.h2, c.h3, c.h4, c.h5, c.h6), H);
    let (t, t_fine) = c.compensate_temperature(ADC_T);
    assert_eq!(t_fine, 128_422);
    assert_eq!(t, 2508); // 25.08 °C
    // The example gives 100653.27 Pa (floating point); the 64-bit integer formula lands within
    // its 1/256 Pa resolution plus the formula's own truncations: 25767233 / 256 = 100653.254 Pa.
    let p = c.compensate_pressure(ADC_P, t_fine);
    assert_eq!(p, 25_767_233);
    assert!((p as f64 / 256.0 - 100_653.27).abs() < 0.02, "pressure {} Pa", p as f64 / 256.0);
    let h = c.compensate_humidity(ADC_H, t_fine) as f64 / 1024.0;
    let expected = humidity_double(ADC_H as f64, t_fine as f64);
    assert!((h - expected).abs() < 0.1, "integer {h} %RH vs floating {expected} %RH");
}

#[test]
fn bme280_init_and_read_issue_the_datasheet_transactions() {
    let mut ex = bme_init_transactions();
    ex.push(I2cT::write_read(BME_ADDR, vec![BME_PRESS_MSB], data_bytes()));
    let mut i2c = I2cMock::new(&ex);
    let mut s = Bme280::new(i2c.clone(), 1, BME_ADDR, &mut NoopDelay::new()).unwrap();
    let r = s.read(Timestamp(42)).unwrap();
    assert_eq!(r.timestamp, Timestamp(42));
    assert_eq!(r.get(Quantity::Temperature).unwrap().value, 25.08);
    assert!((r.get(Quantity::Pressure).unwrap().value - 100_653.27).abs() < 0.02);
    let h = r.get(Quantity::Humidity).unwrap().value;
    assert!((0.0..=100.0).contains(&h));
    i2c.done();
}

#[test]
fn bme280_at_a_bmp280_address_fails_the_chip_id_check() {
    let ex = [I2cT::write_read(BME_ADDR, vec![BME_ID], vec![0x58])];
    let mut i2c = I2cMock::new(&ex);
    let e = Bme280::new(i2c.clone(), 1, BME_ADDR, &mut NoopDelay::new()).err().unwrap();
    assert_eq!(e, bme280::Error::WrongChipId(0x58));
    assert!(e.to_string().contains("expected 0x60"));
    i2c.done();
}

#[test]
fn bme280_reports_not_ready_before_its_first_measurement() {
    let mut ex = bme_init_transactions();
    ex.push(I2cT::write_read(BME_ADDR, vec![BME_PRESS_MSB], vec![0x80, 0, 0, 0x80, 0, 0, 0x80, 0]));
    let mut i2c = I2cMock::new(&ex);
    let mut s = Bme280::new(i2c.clone(), 1, BME_ADDR, &mut NoopDelay::new()).unwrap();
    assert_eq!(s.read(Timestamp(0)).err(), Some(bme280::Error::NotReady));
    i2c.done();
}

// ADS1115, SBAS444 section 9.6.
const ADS_ADDR: u8 = 0x48;
const ADS_CONVERSION: u8 = 0x00;
const ADS_CONFIG: u8 = 0x01;

#[test]
fn ads1115_single_shot_writes_config_polls_os_then_reads_conversion() {
    // OS=1 | MUX=110 (AIN2/GND) | PGA=001 (±4.096 V) | MODE=1 | DR=100 | COMP_QUE=11
    let config: u16 = 0b1_110_001_1_100_0_0_0_11;
    let ex = [
        I2cT::write(ADS_ADDR, vec![ADS_CONFIG, (config >> 8) as u8, config as u8]),
        I2cT::write_read(ADS_ADDR, vec![ADS_CONFIG], vec![0x63, 0x83]), // OS=0: still converting
        I2cT::write_read(ADS_ADDR, vec![ADS_CONFIG], vec![0xE3, 0x83]), // OS=1: done
        I2cT::write_read(ADS_ADDR, vec![ADS_CONVERSION], vec![0x40, 0x00]),
    ];
    let mut i2c = I2cMock::new(&ex);
    let mut adc = Ads1115::new(i2c.clone(), NoopDelay::new(), 1, ADS_ADDR, FullScale::V4_096, &[2]).unwrap();
    assert_eq!(adc.config_word(2), config);
    let r = adc.read(Timestamp(1)).unwrap();
    let s = r.get_labelled(Quantity::Voltage, "ain2").unwrap();
    assert!((s.value - 2.048).abs() < 1e-9); // 0x4000 of 0x8000 at 4.096 V
    i2c.done();
}

#[test]
fn ads1115_negative_codes_are_negative_volts() {
    let config: u16 = 0b1_100_010_1_100_0_0_0_11; // AIN0, ±2.048 V
    let ex = [
        I2cT::write(ADS_ADDR, vec![ADS_CONFIG, (config >> 8) as u8, config as u8]),
        I2cT::write_read(ADS_ADDR, vec![ADS_CONFIG], vec![0x85, 0x83]),
        I2cT::write_read(ADS_ADDR, vec![ADS_CONVERSION], vec![0xFF, 0xFF]),
    ];
    let mut i2c = I2cMock::new(&ex);
    let mut adc = Ads1115::new(i2c.clone(), NoopDelay::new(), 1, ADS_ADDR, FullScale::V2_048, &[0]).unwrap();
    assert_eq!(adc.read_code(0).unwrap(), -1);
    i2c.done();
}

#[test]
fn mcp3008_sends_the_three_byte_frame_and_decodes_ten_bits() {
    // start bit, then SGL=1 D2..D0=101 (channel 5), then clocks; result in the low 2 + 8 bits.
    let ex = [
        SpiT::transaction_start(),
        SpiT::transfer_in_place(vec![0x01, 0b1101_0000, 0x00], vec![0xFF, 0b1111_1110, 0xCD]),
        SpiT::transaction_end(),
    ];
    let mut spi = SpiMock::new(&ex);
    let mut adc = Mcp3008::new(spi.clone(), 0, 0, 3.3, &[5]).unwrap();
    let r = adc.read(Timestamp(0)).unwrap();
    let s = r.get_labelled(Quantity::Voltage, "ch5").unwrap();
    let code = 0x2CD as f64;
    assert!((s.value - code * 3.3 / 1024.0).abs() < 1e-12);
    spi.done();
}

#[test]
fn mcp3008_rejects_channels_it_does_not_have() {
    let mut spi = SpiMock::new(&[]);
    assert!(Mcp3008::new(spi.clone(), 0, 0, 3.3, &[8]).is_err());
    spi.done();
}

#[test]
fn gpio_input_reads_the_level_and_output_drives_it() {
    let mut pin = PinMock::new(&[PinT::get(State::High), PinT::get(State::Low)]);
    let mut input = GpioInput::new(pin.clone(), 0, 17);
    assert_eq!(input.read(Timestamp(0)).unwrap().get(Quantity::Level).unwrap().value, 1.0);
    assert_eq!(input.read(Timestamp(1)).unwrap().get(Quantity::Level).unwrap().value, 0.0);
    pin.done();

    let mut pin = PinMock::new(&[PinT::set(State::Low), PinT::set(State::High)]);
    let mut out = GpioOutput::new(pin.clone(), 0, 18, false).unwrap();
    out.set(true).unwrap();
    assert_eq!(out.read(Timestamp(0)).unwrap().get(Quantity::Level).unwrap().value, 1.0);
    pin.done();
}
