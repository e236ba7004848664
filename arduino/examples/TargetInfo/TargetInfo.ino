// TargetInfo: checks the wiring to an AVR with Optiboot before flashing it.
// Resets the target through the reset pin, syncs with its bootloader and
// prints what it says, using the peerflash AVR driver directly (the same
// calls PeerflashHexUpdater makes). Send any byte on Serial to ask again.
//
// Wiring (Mega -> 328P):  TX1 (18) -> RX (D0),  RX1 (19) <- TX (D1),  pin 53 -> RESET,  GND.
#include <Peerflash.h>

static PeerflashPort target(Serial1, 53);
static PeerflashAvrState avr; // the driver's state (opaque), static: no heap
static pf_target_info info;   // what connect() learns
static pf_diag diag;          // the explanation of a failure

static void ask()
{
    pf_target_config cfg = PF_TARGET_CONFIG_DEFAULT();
    cfg.port = target.port();
    cfg.diag = &diag;
    int r = pf_target_avr.open(&avr, &cfg);
    if (r == PF_OK)
        r = pf_target_avr.connect(&avr, &info);
    if (r == PF_OK) {
        Serial.print(F("chip: "));
        Serial.println(info.chip);
        Serial.print(F("bootloader: "));
        Serial.println(info.bootloader);
        Serial.print(F("flash: "));
        Serial.print(info.geom.flash_size);
        Serial.print(F(" bytes, pages of "));
        Serial.println(info.geom.write_align);
        pf_target_avr.run(&avr);  // leave the bootloader: the target's program starts again
    } else {
        Serial.print(F("no answer: "));
        Serial.println(diag.text);
    }
    pf_target_avr.close(&avr);
}

void setup()
{
    Serial.begin(115200);
    Serial1.begin(115200);
    target.begin();
    ask();
}

void loop()
{
    if (Serial.available()) {
        while (Serial.available())
            Serial.read();
        ask();
    }
}
