# bash completion for peerflash (installed as
# share/bash-completion/completions/peerflash by cmake --install)
_peerflash() {
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cmd=${COMP_WORDS[1]}
    local commands="flash verify read erase info ports wire sim sign keygen help"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$commands --help --version -V" -- "$cur"))
        return
    fi
    case $prev in
        --target) COMPREPLY=($(compgen -W "agent avr stm32 esp" -- "$cur")); return ;;
        --port) COMPREPLY=($(compgen -W "$(ls /dev/ttyUSB* /dev/ttyACM* 2>/dev/null) tcp:// tcp-listen://" -- "$cur")
                           $(compgen -f -- "$cur")); return ;;
        --erase) COMPREPLY=($(compgen -W "touched all" -- "$cur")); return ;;
        --reset) COMPREPLY=($(compgen -W "auto none tight classic" -- "$cur")); return ;;
        --baud|--connect-baud) COMPREPLY=($(compgen -W "9600 57600 115200 230400 460800 921600 1500000 2000000" -- "$cur")); return ;;
        --chip) COMPREPLY=($(compgen -W "ATmega328P ATmega2560 ATmega32U4 STM32F103xB STM32F401xE STM32G07xxB ESP32 ESP32-S2 ESP32-S3 ESP32-C3" -- "$cur")); return ;;
        --key|--flash|--bootloader|--flash-dump|-o|--pub|--stats) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    case $cmd in
        help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        sim) [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W "avr esp32 stm32 agent" -- "$cur")) ||
                 COMPREPLY=($(compgen -W "--port --help" -- "$cur")) ;;
        flash|verify|read|erase|info)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--target --port --baud --connect-baud --chip --reset --json --quiet --verbose
                    --help --no-verify --erase --no-skip --no-run --no-compress --read-compare --all
                    --unprotect-read --unprotect-write" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        *) [[ $cur == -* ]] && COMPREPLY=($(compgen -W "--help" -- "$cur")) || COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}
complete -F _peerflash peerflash
